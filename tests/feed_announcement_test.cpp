// A change to a node's feed as it travels in an announcement (control-plane/feed_announcement.hpp): read back
// as the same change, and a placed session (which carries its key) opened only with the replicas' key and
// only as the change of the node and version it was sealed for.
#include <gtest/gtest.h>

#include <string>

#include "control-plane/credentials.hpp"
#include "control-plane/feed_announcement.hpp"

namespace kairo::control {
namespace {

const std::string kSigningKey(40, 'k');

FeedChange placed(const std::string& id) {
  FeedChange change{.kind = FeedChange::Kind::kAdd,
                    .session_id = id,
                    .session = {},
                    .order_key = "2026-12-02 21:00:00.123456+00|" + id};
  change.session.set_session_id(id);
  change.session.set_scene("vr-room.glb");
  change.session.set_session_key(std::string(64, 'f'));
  change.session.set_user("kim");
  change.session.set_state("placed");
  return change;
}

TEST(FeedAnnouncement, a_placed_session_comes_back_whole_and_its_key_never_shows) {
  const AccessTokens tokens(kSigningKey);
  const FeedAnnouncementCodec codec(tokens.derived_key("kairo node feed announcements"));
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string text = codec.encode(7, 42, placed(id));
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.front(), '+');
  EXPECT_EQ(text.find_first_not_of("+ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos)
      << "only characters that need no quoting in a payload or an array literal";
  EXPECT_EQ(text.find("ffffffff"), std::string::npos);
  EXPECT_EQ(text.find("kim"), std::string::npos);
  const auto back = codec.decode(7, 42, text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, FeedChange::Kind::kAdd);
  EXPECT_EQ(back->session_id, id);
  EXPECT_EQ(back->order_key, placed(id).order_key);
  EXPECT_EQ(back->session.SerializeAsString(), placed(id).session.SerializeAsString());
  // Two seals of the same change differ (a fresh nonce each).
  EXPECT_NE(codec.encode(7, 42, placed(id)), text);
  // Another replica with the same signing key opens it.
  EXPECT_TRUE(FeedAnnouncementCodec(AccessTokens(kSigningKey).derived_key("kairo node feed announcements"))
                  .decode(7, 42, text));
}

TEST(FeedAnnouncement, a_sealed_session_opens_only_with_the_key_and_as_the_change_it_was_made_for) {
  const FeedAnnouncementCodec codec(AccessTokens(kSigningKey).derived_key("kairo node feed announcements"));
  const std::string text = codec.encode(7, 42, placed("00ff"));
  ASSERT_FALSE(text.empty());
  EXPECT_FALSE(codec.decode(8, 42, text)) << "another node";
  EXPECT_FALSE(codec.decode(7, 43, text)) << "another version";
  const FeedAnnouncementCodec other(
      AccessTokens(std::string(40, 'x')).derived_key("kairo node feed announcements"));
  EXPECT_FALSE(other.decode(7, 42, text)) << "another signing key (a rotation under way)";
  EXPECT_FALSE(FeedAnnouncementCodec("").decode(7, 42, text)) << "no key";
  EXPECT_TRUE(FeedAnnouncementCodec("").encode(7, 42, placed("00ff")).empty()) << "no key: not carried";
  for (size_t at = 1; at + 1 < text.size(); at += 7) {  // (the last character may hold unused bits)
    std::string tampered = text;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(codec.decode(7, 42, tampered)) << at;
  }
  EXPECT_FALSE(codec.decode(7, 42, text.substr(0, text.size() / 2)));
  EXPECT_FALSE(codec.decode(7, 42, "+"));
  EXPECT_FALSE(codec.decode(7, 42, "+!!!!"));
}

// Ends and running reports are sealed too: NOTIFY has no access control, and any role that can connect to the
// database could otherwise tell a replica that a node's session ended.
TEST(FeedAnnouncement, ends_and_running_reports_are_sealed_and_a_forged_or_moved_one_is_refused) {
  const FeedAnnouncementCodec codec(AccessTokens(kSigningKey).derived_key("kairo node feed announcements"));
  const FeedChange ended{
      .kind = FeedChange::Kind::kRemove, .session_id = "00ff", .session = {}, .order_key = {}};
  const std::string text = codec.encode(3, 9, ended);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.front(), '-');
  const auto back = codec.decode(3, 9, text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, FeedChange::Kind::kRemove);
  EXPECT_EQ(back->session_id, "00ff");
  EXPECT_FALSE(codec.decode(3, 10, text)) << "as another version";
  EXPECT_FALSE(codec.decode(4, 9, text)) << "for another node";
  EXPECT_FALSE(codec.decode(3, 9, "r" + text.substr(1))) << "as another kind";
  const std::string running = codec.encode(
      3, 0,
      FeedChange{.kind = FeedChange::Kind::kRunning, .session_id = "00ff", .session = {}, .order_key = {}});
  const auto running_back = codec.decode(3, 0, running);
  ASSERT_TRUE(running_back);
  EXPECT_EQ(running_back->kind, FeedChange::Kind::kRunning);
  EXPECT_EQ(running_back->session_id, "00ff");
  for (const char* forged : {"", "-", "r", "-00ff", "r00ff", "+00ff", "x00ff", "s", "-00ff:s"})
    EXPECT_FALSE(codec.decode(3, 9, forged)) << forged;
  EXPECT_FALSE(codec.decode(3, 9, "-" + std::string(4000, 'A'))) << "longer than any change";
  // A session id of another shape is not carried (the others read the feed).
  EXPECT_TRUE(
      codec
          .encode(
              3, 9,
              FeedChange{
                  .kind = FeedChange::Kind::kRemove, .session_id = "not,hex", .session = {}, .order_key = {}})
          .empty());
  EXPECT_TRUE(FeedAnnouncementCodec("").encode(3, 9, ended).empty()) << "no key: nothing carried";
}

TEST(FeedAnnouncement, a_change_applies_to_a_feed_only_where_it_fits) {
  FeedContent content;
  EXPECT_TRUE(content.apply(placed("aa")));
  EXPECT_FALSE(content.apply(placed("aa"))) << "added twice";
  EXPECT_TRUE(content.apply(
      FeedChange{.kind = FeedChange::Kind::kRunning, .session_id = "aa", .session = {}, .order_key = {}}));
  EXPECT_EQ(content.feed.sessions(0).state(), "running");
  EXPECT_FALSE(content.apply(
      FeedChange{.kind = FeedChange::Kind::kRunning, .session_id = "bb", .session = {}, .order_key = {}}));
  EXPECT_TRUE(content.apply(
      FeedChange{.kind = FeedChange::Kind::kRemove, .session_id = "aa", .session = {}, .order_key = {}}));
  EXPECT_FALSE(content.apply(
      FeedChange{.kind = FeedChange::Kind::kRemove, .session_id = "aa", .session = {}, .order_key = {}}));
  EXPECT_EQ(content.feed.sessions_size(), 0);
}

}  // namespace
}  // namespace kairo::control

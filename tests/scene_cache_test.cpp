// The node's disk cache of catalogue scenes (node/scene_cache.hpp): verified on the way in and on restart,
// least recently used first out, never a file under a hash it does not match.
#include <gtest/gtest.h>

#include <fstream>

#include "core/content_hash.hpp"
#include "core/error.hpp"
#include "node/scene_cache.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

TEST(SceneCache, keeps_verified_scenes_within_its_size_least_recently_used_first_out) {
  const auto dir = test::temp_dir();
  const std::string a(400'000, 'a'), b(400'000, 'b'), c(400'000, 'c');
  SceneCache cache(dir, 1'000'000);
  EXPECT_FALSE(cache.find(sha256_hex(a)));
  const auto file_a = cache.store(sha256_hex(a), a);
  EXPECT_EQ(file_a, dir / (sha256_hex(a) + ".glb"));
  cache.store(sha256_hex(b), b);
  ASSERT_TRUE(cache.find(sha256_hex(a)));  // a used again: b is now the least recently used
  cache.store(sha256_hex(c), c);           // 1.2 MB > 1 MB: b goes
  EXPECT_EQ(cache.held(), (std::vector<std::string>{sha256_hex(c), sha256_hex(a)}));
  EXPECT_FALSE(cache.find(sha256_hex(b)));
  EXPECT_FALSE(std::filesystem::exists(dir / (sha256_hex(b) + ".glb")));
  EXPECT_EQ(cache.bytes(), 800'000u);
  // Stored twice: kept once.
  cache.store(sha256_hex(c), c);
  EXPECT_EQ(cache.bytes(), 800'000u);
}

TEST(SceneCache, refuses_bytes_that_do_not_match_their_hash_or_exceed_the_whole_cache) {
  const auto dir = test::temp_dir();
  SceneCache cache(dir, 1000);
  try {
    cache.store(sha256_hex("the real scene"), "a tampered scene");
    FAIL() << "a mismatch was stored";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not match their hash"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cache.store(sha256_hex(std::string(2000, 'x')), std::string(2000, 'x')), Error);
  EXPECT_THROW(cache.store("../../etc/passwd", "x"), Error);
  EXPECT_TRUE(cache.held().empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(SceneCache, on_restart_keeps_intact_files_and_removes_damaged_and_half_written_ones) {
  const auto dir = test::temp_dir();
  const std::string good(1000, 'g'), bad(1000, 'b');
  {
    SceneCache cache(dir, 1'000'000);
    cache.store(sha256_hex(good), good);
    cache.store(sha256_hex(bad), bad);
  }
  std::ofstream(dir / (sha256_hex(bad) + ".glb"), std::ios::trunc) << "flipped on disk";
  std::ofstream(dir / (sha256_hex("interrupted") + ".partial")) << "half";
  std::ofstream(dir / "notes.txt") << "not ours: left alone";
  SceneCache reopened(dir, 1'000'000);
  EXPECT_EQ(reopened.held(), std::vector<std::string>{sha256_hex(good)});
  EXPECT_FALSE(std::filesystem::exists(dir / (sha256_hex(bad) + ".glb")));
  EXPECT_FALSE(std::filesystem::exists(dir / (sha256_hex("interrupted") + ".partial")));
  EXPECT_TRUE(std::filesystem::exists(dir / "notes.txt"));
}

TEST(SceneCache, without_a_directory_uses_a_private_one_and_removes_it) {
  std::filesystem::path dir;
  {
    SceneCache cache({}, 1'000'000);
    dir = cache.dir();
    cache.store(sha256_hex("x"), "x");
    EXPECT_TRUE(std::filesystem::exists(dir));
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace kairo

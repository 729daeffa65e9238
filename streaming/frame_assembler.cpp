#include "streaming/frame_assembler.hpp"

#include <algorithm>
#include <cstring>

#include "streaming/reed_solomon.hpp"

namespace kairo {

FrameAssembler::FrameAssembler(size_t fragment_body_bytes, int64_t deadline_ns, int max_frames_in_progress)
    : body_(fragment_body_bytes), deadline_ns_(deadline_ns), slots_(size_t(max_frames_in_progress)) {}

FrameAssembler::Slot* FrameAssembler::slot_for(uint64_t frame_id) {
  for (Slot& s : slots_)
    if (s.used && s.frame_id == frame_id) return &s;
  return nullptr;
}

FrameAssembler::Slot* FrameAssembler::allocate(uint64_t frame_id) {
  for (Slot& s : slots_)
    if (!s.used) {
      s.used = true;
      s.frame_id = frame_id;
      return &s;
    }
  // Drop policy: every slot busy means the oldest frame in progress cannot matter any more.
  Slot* oldest = &slots_.front();
  for (Slot& s : slots_)
    if (s.frame_id < oldest->frame_id) oldest = &s;
  if (oldest->frame_id > frame_id) return nullptr;  // the new one is older still: refuse it
  declare_lost(*oldest);
  oldest->used = true;
  oldest->frame_id = frame_id;
  return oldest;
}

void FrameAssembler::declare_lost(Slot& s) {
  if (!s.complete) {
    ++stats_.frames_lost;
    lost_.push_back(s.frame_id);
    skip_.push_back(s.frame_id);
  }
  s = Slot{.shards = std::move(s.shards),
           .present = std::move(s.present),
           .received = std::move(s.received),
           .data_count = std::move(s.data_count),
           .parity_count = std::move(s.parity_count)};
}

bool FrameAssembler::add(std::span<const uint8_t> payload, int64_t now_ns) {
  const auto f = wire::read_video_fragment(payload);
  // Fragment bodies are the MTU's or smaller (a frame cut balanced or finer: FecPolicy::cut_for), down to
  // wire::kMinFragmentBody; one size for all of a frame's fragments (checked below).
  if (!f || f->fragment_bytes > body_ ||
      (f->fragment_bytes != body_ && f->fragment_bytes < wire::kMinFragmentBody)) {
    ++stats_.invalid;
    return false;
  }
  ++stats_.fragments;
  if (!started_) {
    // Join mid-stream at the first frame seen (a keyframe is requested by the caller if this is not one).
    started_ = true;
    next_id_ = f->frame_id;
  }
  if (f->frame_id < next_id_ || std::find(skip_.begin(), skip_.end(), f->frame_id) != skip_.end()) {
    ++stats_.late_fragments;  // its frame was delivered or declared lost: never played
    return true;
  }
  Slot* s = slot_for(f->frame_id);
  if (s == nullptr) {
    s = allocate(f->frame_id);
    if (s == nullptr) {
      ++stats_.late_fragments;
      return true;
    }
    s->first = *f;
    s->body = f->fragment_bytes;
    s->first_arrival_ns = now_ns;
    const size_t slots = size_t(f->block_count) * 255;
    s->shards.resize(slots * s->body);  // grows to the largest frame seen, then reused
    s->present.assign(slots, 0);
    s->received.assign(f->block_count, 0);
    s->data_count.assign(f->block_count, 0);
    s->parity_count.assign(f->block_count, -1);
    const uint64_t shards = (uint64_t(f->frame_bytes) + s->body - 1) / s->body;
    const uint64_t per_block = (shards + f->block_count - 1) / f->block_count;
    for (int b = 0; b < f->block_count; ++b)
      s->data_count[size_t(b)] =
          int(std::min<uint64_t>(per_block, shards - std::min<uint64_t>(shards, b * per_block)));
  }
  const wire::VideoFragment& first = s->first;
  if (f->frame_bytes != first.frame_bytes || f->block_count != first.block_count ||
      f->fragment_bytes != first.fragment_bytes || f->pose_id != first.pose_id ||
      f->data_count != s->data_count[f->block] ||
      (s->parity_count[f->block] >= 0 && f->parity_count != s->parity_count[f->block])) {
    ++stats_.invalid;
    return false;
  }
  s->parity_count[f->block] = f->parity_count;
  s->last_arrival_ns = now_ns;
  // The send time of the last fragment the frame needed: parity arriving after the frame completed does
  // not count (it made "network" = complete - last send read below zero).
  if (!s->complete) s->last_send_ns = std::max(s->last_send_ns, f->send_time_ns);
  const size_t index = size_t(f->block) * 255 + f->fragment_index;
  if (s->complete || s->present[index] || s->received[f->block] >= f->data_count) {
    ++stats_.duplicates;
    return true;
  }
  std::memcpy(&s->shards[index * s->body], payload.data() + wire::VideoFragment::kSize, s->body);
  s->present[index] = 1;
  if (f->flags & wire::VideoFragment::kRetransmission) ++s->retransmitted;
  if (++s->received[f->block] == f->data_count) complete_block(*s, f->block);
  if (s->blocks_complete == first.block_count) {
    s->complete = true;
    s->complete_ns = now_ns;
  }
  return true;
}

void FrameAssembler::complete_block(Slot& s, int block) {
  const int k = s.data_count[size_t(block)], m = std::max(0, s.parity_count[size_t(block)]);
  const size_t base = size_t(block) * 255;
  bool present[kMaxShards];
  uint8_t* shards[kMaxShards];
  int missing_data = 0;
  for (int i = 0; i < k + m; ++i) {
    present[i] = s.present[base + size_t(i)] != 0;
    shards[i] = &s.shards[(base + size_t(i)) * s.body];
    missing_data += i < k && !present[i];
  }
  if (missing_data > 0) {
    rs_reconstruct(k, m, s.body, shards, present);  // k present by construction: cannot fail
    s.fec_recovered += missing_data;
  }
  ++s.blocks_complete;
}

void FrameAssembler::expire(int64_t now_ns) {
  for (Slot& s : slots_)
    if (s.used && !s.complete && now_ns - s.first_arrival_ns > deadline_ns_) declare_lost(s);
  // Frames never seen at all, below a later frame in progress: they share that frame's deadline.
  if (!started_ || slot_for(next_id_) != nullptr) return;
  const Slot* lowest = nullptr;
  for (const Slot& s : slots_)
    if (s.used && (lowest == nullptr || s.frame_id < lowest->frame_id)) lowest = &s;
  if (lowest == nullptr || lowest->frame_id <= next_id_ || now_ns - lowest->first_arrival_ns <= deadline_ns_)
    return;
  for (uint64_t id = next_id_; id < lowest->frame_id; ++id) {
    if (const auto it = std::find(skip_.begin(), skip_.end(), id); it != skip_.end()) {
      skip_.erase(it);  // already reported
      continue;
    }
    ++stats_.frames_lost;
    lost_.push_back(id);
  }
  next_id_ = lowest->frame_id;
}

// A keyframe, or a repair frame that predicts only from frames delivered already (wire::VideoFragment::
// repairs_back), needs none of the frames still missing before it.
bool FrameAssembler::stands_alone(const Slot& s) const {
  if ((s.first.flags & wire::VideoFragment::kKeyframe) != 0) return true;
  return s.first.repairs_back > 0 && s.frame_id - s.first.repairs_back <= next_id_;
}

// Such a frame, complete, is delivered at once: the incomplete and unseen frames before it are given up
// (declared lost) rather than waited for until their deadline. They could only be shown after their time,
// and the frames predicted from them are broken until this one anyway; complete frames between are still
// delivered in order (the caller's reference chain decides whether they are shown). After a loss the repair
// frame the sender makes on the client's NACK (KeyframeRequests::on_at_risk) is shown when it arrives, not a
// frame interval and 30 ms after the loss began to arrive.
void FrameAssembler::give_up_before_standalone() {
  const Slot* standalone = nullptr;
  for (const Slot& s : slots_)
    if (s.used && s.complete && s.frame_id > next_id_ && stands_alone(s) &&
        (standalone == nullptr || s.frame_id < standalone->frame_id))
      standalone = &s;
  if (standalone == nullptr) return;
  const uint64_t until = standalone->frame_id;
  bool gave_up = false;
  for (uint64_t id = next_id_; id < until; ++id) {
    if (Slot* s = slot_for(id)) {
      if (s->complete) continue;
      declare_lost(*s);
      gave_up = true;
    } else if (std::find(skip_.begin(), skip_.end(), id) == skip_.end()) {
      ++stats_.frames_lost;
      lost_.push_back(id);
      skip_.push_back(id);
      gave_up = true;
    }
  }
  stats_.gave_up_for_standalone += gave_up ? 1 : 0;
}

const AssembledFrame* FrameAssembler::pop() {
  give_up_before_standalone();
  while (true) {
    Slot* s = slot_for(next_id_);
    if (s == nullptr) {
      // Skip over ids declared lost (their slots were freed).
      if (const auto it = std::find(skip_.begin(), skip_.end(), next_id_); it != skip_.end()) {
        skip_.erase(it);
        ++next_id_;
        continue;
      }
      return nullptr;
    }
    if (!s->complete) return nullptr;
    const wire::VideoFragment& f = s->first;
    output_.resize(f.frame_bytes);
    uint64_t shard = 0;
    for (int b = 0; b < f.block_count; ++b)
      for (int i = 0; i < s->data_count[size_t(b)]; ++i, ++shard) {
        const size_t offset = size_t(shard) * s->body;
        const size_t n = std::min(s->body, size_t(f.frame_bytes) - offset);
        std::memcpy(&output_[offset], &s->shards[(size_t(b) * 255 + size_t(i)) * s->body], n);
      }
    out_ = AssembledFrame{.frame_id = f.frame_id,
                          .pose_id = f.pose_id,
                          .pose_time_ns = f.pose_time_ns,
                          .capture_time_ns = f.capture_time_ns,
                          .first_send_ns = f.send_time_ns,
                          .last_send_ns = s->last_send_ns,
                          .first_arrival_ns = s->first_arrival_ns,
                          .complete_ns = s->complete_ns,
                          .stream = f.stream,
                          .keyframe = (f.flags & wire::VideoFragment::kKeyframe) != 0,
                          .fec_recovered = s->fec_recovered,
                          .retransmitted = s->retransmitted,
                          .data = output_};
    ++stats_.frames_delivered;
    if (s->fec_recovered > 0) ++stats_.frames_recovered;
    s->complete = true;  // not counted as lost when freed
    declare_lost(*s);    // frees the slot (no loss: it was complete)
    ++next_id_;
    return &out_;
  }
}

std::span<const uint64_t> FrameAssembler::take_lost() {
  handed_.swap(lost_);
  lost_.clear();
  return handed_;
}

std::span<const uint64_t> FrameAssembler::unseen(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns) {
  size_t n = 0;
  if (!started_) return {};
  // Ids in progress are few (the slots); a gap wider than the slots is the expiry's to handle.
  for (uint64_t id = next_id_; id < next_id_ + slots_.size() && n < unseen_.size(); ++id) {
    if (slot_for(id) != nullptr || std::find(skip_.begin(), skip_.end(), id) != skip_.end()) continue;
    const Slot* later = nullptr;
    for (const Slot& s : slots_)
      if (s.used && s.frame_id > id && (later == nullptr || s.frame_id < later->frame_id)) later = &s;
    if (later == nullptr || now_ns - later->first_arrival_ns < quiet_ns) break;  // nothing after it yet
    const auto asked = std::find_if(unseen_asked_.begin(), unseen_asked_.end(),
                                    [&](const UnseenAsked& a) { return a.used && a.frame_id == id; });
    if (asked != unseen_asked_.end()) {
      if (now_ns - asked->when_ns < renack_ns) continue;
      asked->when_ns = now_ns;
    } else {
      unseen_asked_[unseen_asked_next_] = {.used = true, .frame_id = id, .when_ns = now_ns};
      unseen_asked_next_ = (unseen_asked_next_ + 1) % unseen_asked_.size();
    }
    unseen_[n++] = id;
  }
  return std::span<const uint64_t>(unseen_.data(), n);
}

void FrameAssembler::missing_impl(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns,
                                  void (*need)(void*, uint64_t, int, int), void* context) {
  for (Slot& s : slots_) {
    if (!s.used || s.complete || now_ns - s.last_arrival_ns < quiet_ns || now_ns - s.last_nack_ns < renack_ns)
      continue;
    s.last_nack_ns = now_ns;
    for (int b = 0; b < s.first.block_count; ++b) {
      const int k = s.data_count[size_t(b)];
      int deficit = s.received[size_t(b)] < k ? k - s.received[size_t(b)] : 0;
      const int total = k + std::max(0, s.parity_count[size_t(b)]);
      for (int i = 0; i < total && deficit > 0; ++i)
        if (!s.present[size_t(b) * 255 + size_t(i)]) {
          need(context, s.frame_id, b, i);
          --deficit;
        }
      // A block none of whose fragments arrived yet: its parity count is unknown, ask for its data.
      for (int i = 0; deficit > 0 && s.parity_count[size_t(b)] < 0 && i < k; ++i, --deficit)
        need(context, s.frame_id, b, i);
    }
  }
}

}  // namespace kairo

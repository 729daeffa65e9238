#include "replay/frame_archive.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
}

#include "core/error.hpp"

namespace kairo {
namespace {

struct ContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct ParserDeleter {
  void operator()(AVCodecParserContext* p) const { av_parser_close(p); }
};

}  // namespace

struct FrameArchiveWriter::Impl {
  std::filesystem::path path;
  std::ofstream file;
  std::unique_ptr<AVCodecContext, ContextDeleter> codec;
  std::unique_ptr<AVFrame, FrameDeleter> frame;
  std::unique_ptr<AVPacket, PacketDeleter> packet;
  int64_t next_pts = 0;
  bool finished = false;

  void drain() {
    while (avcodec_receive_packet(codec.get(), packet.get()) == 0) {
      file.write(reinterpret_cast<const char*>(packet->data), packet->size);
      av_packet_unref(packet.get());
    }
    if (!file) throw_runtime("cannot write " + path.string());
  }
};

FrameArchiveWriter::FrameArchiveWriter(const std::filesystem::path& path, int width, int height)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  const AVCodec* encoder = avcodec_find_encoder_by_name("libx264rgb");
  if (encoder == nullptr) throw_runtime("this FFmpeg has no libx264rgb encoder (for " + path.string() + ")");
  impl_->codec.reset(avcodec_alloc_context3(encoder));
  AVCodecContext* c = impl_->codec.get();
  c->width = width;
  c->height = height;
  c->pix_fmt = AV_PIX_FMT_RGB24;
  c->time_base = {1, 30};
  c->gop_size = 60;
  c->max_b_frames = 0;
  c->thread_count = 1;  // the replay's other thread is busy; one keeps the archive off its core
  av_opt_set(c->priv_data, "preset", "ultrafast", 0);
  av_opt_set(c->priv_data, "qp", "0", 0);  // lossless
  if (avcodec_open2(c, encoder, nullptr) < 0) throw_runtime("cannot open libx264rgb for " + path.string());
  impl_->frame.reset(av_frame_alloc());
  impl_->frame->format = AV_PIX_FMT_RGB24;
  impl_->frame->width = width;
  impl_->frame->height = height;
  if (av_frame_get_buffer(impl_->frame.get(), 0) < 0) throw_runtime("cannot allocate an archive frame");
  impl_->packet.reset(av_packet_alloc());
  impl_->file.open(path, std::ios::binary | std::ios::trunc);
  if (!impl_->file) throw_runtime("cannot create " + path.string());
}

FrameArchiveWriter::~FrameArchiveWriter() {
  try {
    finish();
  } catch (const std::exception&) {
    // A destructor cannot report it; finish() called explicitly does.
  }
}

void FrameArchiveWriter::add(std::span<const uint8_t> rgba) {
  AVFrame* f = impl_->frame.get();
  if (rgba.size() != size_t(f->width) * size_t(f->height) * 4)
    throw_runtime("frame archive: a frame of the wrong size");
  if (av_frame_make_writable(f) < 0) throw_runtime("frame archive: no writable frame");
  for (int y = 0; y < f->height; ++y) {
    const uint8_t* in = &rgba[size_t(y) * size_t(f->width) * 4];
    uint8_t* out = f->data[0] + size_t(y) * size_t(f->linesize[0]);
    for (int x = 0; x < f->width; ++x) {
      out[3 * x] = in[4 * x];
      out[3 * x + 1] = in[4 * x + 1];
      out[3 * x + 2] = in[4 * x + 2];
    }
  }
  f->pts = impl_->next_pts++;
  if (avcodec_send_frame(impl_->codec.get(), f) < 0)
    throw_runtime("frame archive: the encoder refused a frame");
  impl_->drain();
}

void FrameArchiveWriter::finish() {
  if (impl_->finished) return;
  impl_->finished = true;
  avcodec_send_frame(impl_->codec.get(), nullptr);
  impl_->drain();
  impl_->file.close();
  if (!impl_->file) throw_runtime("cannot write " + impl_->path.string());
}

namespace {

// One pass through a raw stream (Annex B or OBUs) with libavcodec's parser; `convert` turns each wanted
// decoded picture into an image.
template <typename Convert>
std::map<uint64_t, ImageRgba8> read_stream(const std::filesystem::path& path, AVCodecID codec_id,
                                           const std::vector<uint64_t>& wanted, Convert&& convert) {
  std::map<uint64_t, ImageRgba8> found;
  const std::set<uint64_t> want(wanted.begin(), wanted.end());
  if (want.empty()) return found;
  std::ifstream file(path, std::ios::binary);
  if (!file) throw_invalid_input("cannot read " + path.string());
  const AVCodec* decoder = avcodec_find_decoder(codec_id);
  if (decoder == nullptr) throw_runtime("this FFmpeg cannot decode " + path.string());
  std::unique_ptr<AVCodecContext, ContextDeleter> codec(avcodec_alloc_context3(decoder));
  codec->thread_count = 1;
  if (avcodec_open2(codec.get(), decoder, nullptr) < 0)
    throw_runtime("cannot open a decoder for " + path.string());
  std::unique_ptr<AVCodecParserContext, ParserDeleter> parser(av_parser_init(codec_id));
  if (!parser) throw_runtime("no stream parser for " + path.string());
  std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  uint64_t index = 0;
  const uint64_t last = *want.rbegin();

  const auto take_frames = [&] {
    while (avcodec_receive_frame(codec.get(), frame.get()) == 0) {
      const AVFrame* f = frame.get();
      if (want.count(index)) found.emplace(index, convert(*f));
      ++index;
      av_frame_unref(frame.get());
    }
  };
  const auto decode = [&](AVPacket* p) {
    if (avcodec_send_packet(codec.get(), p) < 0 && p != nullptr)
      throw_invalid_input(path.string() + ": corrupt frame archive");
    take_frames();
  };

  std::vector<uint8_t> chunk(1 << 20);
  while (index <= last && file) {
    file.read(reinterpret_cast<char*>(chunk.data()), std::streamsize(chunk.size()));
    const size_t got = size_t(file.gcount());
    const uint8_t* data = chunk.data();
    size_t left = got;
    while (left > 0 && index <= last) {
      uint8_t* out = nullptr;
      int out_size = 0;
      const int used = av_parser_parse2(parser.get(), codec.get(), &out, &out_size, data, int(left),
                                        AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
      if (used < 0) throw_invalid_input(path.string() + ": corrupt frame archive");
      data += used;
      left -= size_t(used);
      if (out_size > 0) {
        packet->data = out;
        packet->size = out_size;
        decode(packet.get());
      }
    }
  }
  if (index <= last) {  // the parser holds the last access unit until it is told the stream ended
    uint8_t* out = nullptr;
    int out_size = 0;
    av_parser_parse2(parser.get(), codec.get(), &out, &out_size, nullptr, 0, AV_NOPTS_VALUE, AV_NOPTS_VALUE,
                     0);
    if (out_size > 0) {
      packet->data = out;
      packet->size = out_size;
      decode(packet.get());
    }
    decode(nullptr);
  }
  return found;
}

}  // namespace

std::map<uint64_t, ImageRgba8> read_archived_frames(const std::filesystem::path& path,
                                                    const std::vector<uint64_t>& wanted) {
  return read_stream(path, AV_CODEC_ID_H264, wanted, [&](const AVFrame& f) {
    if (f.format != AV_PIX_FMT_GBRP) throw_invalid_input(path.string() + " is not a replay frame archive");
    ImageRgba8 image{.width = f.width, .height = f.height, .pixels = {}};
    image.pixels.resize(size_t(f.width) * size_t(f.height) * 4);
    for (int y = 0; y < f.height; ++y) {
      const uint8_t* g = f.data[0] + size_t(y) * size_t(f.linesize[0]);
      const uint8_t* b = f.data[1] + size_t(y) * size_t(f.linesize[1]);
      const uint8_t* r = f.data[2] + size_t(y) * size_t(f.linesize[2]);
      uint8_t* out = &image.pixels[size_t(y) * size_t(f.width) * 4];
      for (int x = 0; x < f.width; ++x) {
        out[4 * x] = r[x];
        out[4 * x + 1] = g[x];
        out[4 * x + 2] = b[x];
        out[4 * x + 3] = 255;
      }
    }
    return image;
  });
}

std::map<uint64_t, ImageRgba8> read_decoded_luma(const std::filesystem::path& path, Codec codec,
                                                 const std::vector<uint64_t>& wanted) {
  const AVCodecID id = codec == Codec::kH264   ? AV_CODEC_ID_H264
                       : codec == Codec::kHevc ? AV_CODEC_ID_HEVC
                                               : AV_CODEC_ID_AV1;
  return read_stream(path, id, wanted, [&](const AVFrame& f) {
    if (f.format != AV_PIX_FMT_YUV420P && f.format != AV_PIX_FMT_YUVJ420P && f.format != AV_PIX_FMT_NV12)
      throw_invalid_input(path.string() + ": not 8-bit 4:2:0 video");
    ImageRgba8 image{.width = f.width, .height = f.height, .pixels = {}};
    image.pixels.resize(size_t(f.width) * size_t(f.height) * 4);
    for (int y = 0; y < f.height; ++y) {
      const uint8_t* luma = f.data[0] + size_t(y) * size_t(f.linesize[0]);
      uint8_t* out = &image.pixels[size_t(y) * size_t(f.width) * 4];
      for (int x = 0; x < f.width; ++x) {
        out[4 * x] = out[4 * x + 1] = out[4 * x + 2] = luma[x];
        out[4 * x + 3] = 255;
      }
    }
    return image;
  });
}

}  // namespace kairo

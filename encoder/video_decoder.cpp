#include "encoder/video_decoder.hpp"

#include <cmath>
#include <cstring>
#include <limits>

extern "C" {
#include <libavcodec/avcodec.h>
}

#include "core/error.hpp"

namespace kairo {

struct VideoDecoder::Impl {
  AVCodecContext* codec = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  ~Impl() {
    avcodec_free_context(&codec);
    av_packet_free(&packet);
    av_frame_free(&frame);
  }
};

VideoDecoder::VideoDecoder(Codec codec) : impl_(std::make_unique<Impl>()) {
  const AVCodecID id = codec == Codec::kH264   ? AV_CODEC_ID_H264
                       : codec == Codec::kHevc ? AV_CODEC_ID_HEVC
                                               : AV_CODEC_ID_AV1;
  const AVCodec* decoder = avcodec_find_decoder(id);
  if (decoder == nullptr)
    throw_runtime(std::string("no ") + codec_name(codec) + " decoder in this FFmpeg build");
  impl_->codec = avcodec_alloc_context3(decoder);
  impl_->codec->flags |= AV_CODEC_FLAG_LOW_DELAY;  // output each picture as soon as it is decoded
  impl_->codec->thread_type = FF_THREAD_SLICE;     // frame threads would delay output
  if (avcodec_open2(impl_->codec, decoder, nullptr) < 0)
    throw_runtime(std::string("cannot open the ") + codec_name(codec) + " decoder");
  impl_->packet = av_packet_alloc();
  impl_->frame = av_frame_alloc();
}

VideoDecoder::~VideoDecoder() = default;

bool VideoDecoder::decode(std::span<const uint8_t> access_unit, DecodedPicture& out) {
  impl_->packet->data = const_cast<uint8_t*>(access_unit.data());  // not reference counted: FFmpeg copies it
  impl_->packet->size = int(access_unit.size());
  const int sent = avcodec_send_packet(impl_->codec, impl_->packet);
  if (sent < 0 && sent != AVERROR(EAGAIN)) throw_invalid_input("decoder rejected an access unit");
  const int received = avcodec_receive_frame(impl_->codec, impl_->frame);
  if (received == AVERROR(EAGAIN)) return false;
  if (received < 0) throw_invalid_input("decoder failed on an access unit");
  const AVFrame* f = impl_->frame;
  if (f->format != AV_PIX_FMT_YUV420P && f->format != AV_PIX_FMT_YUVJ420P && f->format != AV_PIX_FMT_NV12)
    throw_runtime("decoder produced an unexpected pixel format");
  out.width = f->width;
  out.height = f->height;
  out.y.resize(size_t(f->width) * f->height);
  out.uv.resize(size_t(f->width) * (f->height / 2));
  for (int row = 0; row < f->height; ++row)
    std::memcpy(&out.y[size_t(row) * f->width], f->data[0] + size_t(row) * f->linesize[0], size_t(f->width));
  for (int row = 0; row < f->height / 2; ++row) {
    uint8_t* uv = &out.uv[size_t(row) * f->width];
    if (f->format == AV_PIX_FMT_NV12) {
      std::memcpy(uv, f->data[1] + size_t(row) * f->linesize[1], size_t(f->width));
      continue;
    }
    const uint8_t* u = f->data[1] + size_t(row) * f->linesize[1];
    const uint8_t* v = f->data[2] + size_t(row) * f->linesize[2];
    for (int x = 0; x < f->width / 2; ++x) {
      uv[2 * x] = u[x];
      uv[2 * x + 1] = v[x];
    }
  }
  av_frame_unref(impl_->frame);
  return true;
}

double plane_psnr(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size() || a.empty()) throw_invalid_input("plane_psnr: planes differ in size");
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    sum += d * d;
  }
  const double mse = sum / double(a.size());
  return mse == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace kairo

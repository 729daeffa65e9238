// Foveated NV12 on the device and its undoing on the client: the fovea survives pixel for pixel, the
// periphery is squeezed and comes back blurred but in place.
#include <gtest/gtest.h>

#include <cmath>

#include "client/frame_reconstruction.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

double region_psnr(const ImageRgba8& a, const ImageRgba8& b, int eye_width, float from, float to) {
  double se = 0;
  size_t n = 0;
  for (int eye = 0; eye < 2; ++eye)
    for (int y = int(from * float(a.height)); y < int(to * float(a.height)); ++y)
      for (int x = int(from * float(eye_width)); x < int(to * float(eye_width)); ++x)
        for (int c = 0; c < 3; ++c) {
          const size_t i = (size_t(y) * size_t(a.width) + size_t(eye * eye_width + x)) * 4 + size_t(c);
          const double d = double(a.pixels[i]) - double(b.pixels[i]);
          se += d * d;
          ++n;
        }
  return 10.0 * std::log10(255.0 * 255.0 / std::max(1e-9, se / double(n)));
}

TEST(FoveatedNv12, the_fovea_survives_the_squeeze_and_the_client_puts_the_periphery_back) {
  constexpr int kEye = 256;
  auto scene = GpuScene::upload(test::vulkan(), load_scene(test::scene_path("vr-room.glb")));
  StereoRenderer renderer(scene,
                          RendererConfig{.eye_width = kEye, .eye_height = kEye, .frames_in_flight = 1});
  const StereoView view = test::head_view(test::look_at({0.3f, 1.6f, 1.0f}, {0.0f, 1.2f, -3.0f}));
  FrameMetadata m;
  m.eye_width = m.eye_height = kEye;

  auto render = [&](float strength, double scale) {
    const glm::ivec2 coded = coded_eye_size(kEye, kEye, scale, strength);
    m.coded_width = uint16_t(coded.x);
    m.coded_height = uint16_t(coded.y);
    m.foveation = FoveationParams{.strength = strength, .centre = {glm::vec2(0.1f, 0), glm::vec2(-0.1f, 0)}};
    renderer.submit(FrameRequest{.frame_id = 1,
                                 .view = view,
                                 .want_rgba = true,
                                 .coded_width = coded.x,
                                 .coded_height = coded.y,
                                 .foveation = m.foveation});
    const RenderedFrame& f = renderer.collect();
    EXPECT_EQ(f.nv12[0].width, 2 * coded.x);
    EXPECT_EQ(f.nv12[0].height, coded.y);
    DecodedPicture picture{f.nv12[0].width,
                           f.nv12[0].height,
                           {f.nv12[0].y.begin(), f.nv12[0].y.end()},
                           {f.nv12[0].uv.begin(), f.nv12[0].uv.end()}};
    ImageRgba8 rgba{2 * kEye, kEye, {f.rgba.begin(), f.rgba.end()}};
    renderer.release(f);
    return std::make_pair(reconstruct_stereo(picture, m), rgba);
  };
  const auto [full, rendered] = render(0, 1.0);
  const ImageRgba8 foveated = render(0.6f, 1.0).first;
  const ImageRgba8 scaled = render(0, 0.5).first;
  // NV12 alone (4:2:0 chroma, 8-bit YCbCr) costs a little; the fovea of the foveated frame costs no more.
  const double fovea_full = region_psnr(full, rendered, kEye, 0.4f, 0.6f);
  const double fovea_foveated = region_psnr(foveated, rendered, kEye, 0.4f, 0.6f);
  EXPECT_GT(fovea_full, 30.0);
  EXPECT_GT(fovea_foveated, fovea_full - 0.5) << "the fovea must be copied, not resampled";
  // The whole picture comes back in place: recognisably the same image (squeezed detail is lost).
  EXPECT_GT(region_psnr(foveated, rendered, kEye, 0.0f, 1.0f), 20.0);
  EXPECT_GT(region_psnr(scaled, rendered, kEye, 0.0f, 1.0f), 20.0);
  EXPECT_LT(region_psnr(scaled, rendered, kEye, 0.4f, 0.6f), fovea_foveated);  // scaling blurs the fovea too
  test::expect_validation_clean();
}

}  // namespace
}  // namespace kairo

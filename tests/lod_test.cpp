// Levels of detail (renderer/mesh_lod.hpp): built at load, chosen per draw from the projected error, with
// hysteresis; at a distance the stress scene draws fewer triangles and looks like its full-detail render.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "renderer/mesh_lod.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

TEST(Lod, levels_halve_the_triangles_and_grow_the_error) {
  const SceneData stress = load_scene(test::scene_path("stress.glb"));
  int meshes_with_levels = 0;
  for (const MeshData& m : stress.meshes) {
    ASSERT_GE(m.lod_count, 1u);
    EXPECT_EQ(m.lods[0].index_count, m.index_count);
    EXPECT_EQ(m.lods[0].first_index, m.first_index);
    for (uint32_t level = 1; level < m.lod_count; ++level) {
      EXPECT_LE(m.lods[level].index_count, m.lods[level - 1].index_count * 4 / 5);
      EXPECT_GE(m.lods[level].error, m.lods[level - 1].error);
      EXPECT_LE(uint64_t(m.lods[level].first_index) + m.lods[level].index_count, stress.indices.size());
      EXPECT_EQ(m.lods[level].index_count % 3, 0u);
    }
    meshes_with_levels += m.lod_count > 1;
  }
  EXPECT_GT(meshes_with_levels, 0);
}

TEST(Lod, a_level_changes_only_past_the_hysteresis_band) {
  const std::vector<float> errors = {0.0f, 0.001f, 0.004f, 0.016f};
  const float pixels_per_unit = 512.0f;  // 1024 pixels across a 90 degree field of view
  // Walking slowly away from 0.3 m to 30 m: the level only ever goes coarser.
  int level = 0, changes = 0;
  for (float d = 0.3f; d < 30.0f; d *= 1.002f) {
    const int next = select_lod(errors, level, d, pixels_per_unit, 1.0f);
    EXPECT_GE(next, level) << "at " << d << " m";
    changes += next != level;
    level = next;
  }
  EXPECT_EQ(level, 3);
  EXPECT_EQ(changes, 3);
  // Swaying by 5 % around every distance: once settled (a level may go coarser at the far end of the first
  // sway), the level holds.
  for (float d = 0.3f; d < 30.0f; d *= 1.1f) {
    level = 0;
    for (int step = 0; step < 250; ++step) {
      const float sway = d * (1.0f + 0.05f * std::sin(float(step) * 0.3f));
      const int next = select_lod(errors, level, sway, pixels_per_unit, 1.0f);
      if (step > 30) {
        EXPECT_EQ(next, level) << "at " << sway << " m, step " << step;
      }
      level = next;
    }
  }
  // Coming closer refines as soon as the level's error shows; 0 turns LOD off.
  EXPECT_EQ(select_lod(errors, 3, 0.3f, pixels_per_unit, 1.0f), 0);
  EXPECT_EQ(select_lod(errors, 3, 1000.0f, pixels_per_unit, 0.0f), 0);
}

// The stress scene from a distance, as a 2 x 256^2 client would see it.
struct Frames {
  std::vector<uint64_t> triangles;
  ImageRgba8 last;
};
Frames render_path(const std::shared_ptr<GpuScene>& scene, const std::vector<Pose>& path,
                   float lod_pixel_error, int size = 256) {
  StereoRenderer renderer(scene, RendererConfig{.eye_width = size,
                                                .eye_height = size,
                                                .frames_in_flight = 1,
                                                .nv12 = Nv12Layout::kNone,
                                                .lod_pixel_error = lod_pixel_error});
  Frames out;
  for (size_t i = 0; i < path.size(); ++i) {
    renderer.submit(FrameRequest{.frame_id = i, .view = test::head_view(path[i]), .want_rgba = true});
    const RenderedFrame& frame = renderer.collect();
    out.triangles.push_back(frame.triangles_drawn);
    out.last =
        ImageRgba8{.width = 2 * size, .height = size, .pixels = {frame.rgba.begin(), frame.rgba.end()}};
    renderer.release(frame);
  }
  return out;
}

TEST(Lod, the_stress_scene_at_a_distance_draws_fewer_triangles_and_looks_the_same) {
  const SceneData data = load_scene(test::scene_path("stress.glb"));
  auto scene = GpuScene::upload(test::vulkan(), data);
  const glm::vec3 centre = (data.bounds_min + data.bounds_max) * 0.5f;
  const float radius = glm::length(data.bounds_max - data.bounds_min) * 0.5f;
  const glm::vec3 far = centre + glm::normalize(glm::vec3(0.2f, 0.5f, 1.0f)) * radius * 2.5f;
  const std::vector<Pose> still = {test::look_at(far, centre)};
  const Frames full = render_path(scene, still, 0.0f), lod = render_path(scene, still, 1.0f);
  EXPECT_EQ(full.triangles[0], data.triangle_count());
  EXPECT_LT(lod.triangles[0], full.triangles[0] / 2);
  const ImageDifference d = compare_images(lod.last, full.last, 24);
  std::printf("stress scene at %.0f m: %llu of %llu triangles, PSNR %.1f dB against full detail\n",
              double(glm::length(far - centre)), static_cast<unsigned long long>(lod.triangles[0]),
              static_cast<unsigned long long>(full.triangles[0]), d.psnr_db);
  EXPECT_GE(d.psnr_db, 33.0);
  EXPECT_LE(d.fraction_over, 0.01);
  test::expect_validation_clean();
}

TEST(Lod, a_slow_head_motion_does_not_flip_levels) {
  const SceneData data = load_scene(test::scene_path("stress.glb"));
  auto scene = GpuScene::upload(test::vulkan(), data);
  const glm::vec3 centre = (data.bounds_min + data.bounds_max) * 0.5f;
  const float radius = glm::length(data.bounds_max - data.bounds_min) * 0.5f;
  const glm::vec3 direction = glm::normalize(glm::vec3(0.2f, 0.5f, 1.0f));
  // Backing away from the middle of the field at walking speed (1.5 m/s at 90 Hz), swaying a few millimetres.
  std::vector<Pose> away;
  for (int i = 0; i < 240; ++i) {
    const float sway = 0.003f * std::sin(float(i) * 0.7f);
    away.push_back(test::look_at(
        centre + direction * (radius * 0.05f + float(i) * 1.5f / 90.0f) + glm::vec3(sway, 0.0f, 0.0f),
        centre));
  }
  // 128^2 eyes for speed, with the threshold of 2048^2 eyes (1 pixel there): the same choice per draw.
  const Frames frames = render_path(scene, away, 128.0f / 2048.0f, 128);
  int changes = 0;
  for (size_t i = 1; i < frames.triangles.size(); ++i) {
    EXPECT_LE(frames.triangles[i], frames.triangles[i - 1]) << "frame " << i << ": a level went back finer";
    changes += frames.triangles[i] != frames.triangles[i - 1];
  }
  EXPECT_GT(changes, 0) << "the motion should cross some levels: " << frames.triangles.front() << " .. "
                        << frames.triangles.back() << " triangles, scene radius " << radius;
}

}  // namespace
}  // namespace kairo

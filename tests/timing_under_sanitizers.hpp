#pragma once
// ThreadSanitizer slows every memory access: a frame's timing there is TSan's, not the transport's (CI ran
// the loopback tests under TSan beside other work and saw 94 % on time where the normal build holds 99 %+,
// and a keyframe repair 96 ms after the break where the normal build takes 55). Tests that run under TSan
// for their races assert their timing bars only where the timing is measured.

namespace kairo::test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kTimingIsMeasured = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kTimingIsMeasured = false;
#else
inline constexpr bool kTimingIsMeasured = true;
#endif
#else
inline constexpr bool kTimingIsMeasured = true;
#endif

}  // namespace kairo::test

# Cross build for 64-bit ARM Linux (Debian's g++-aarch64-linux-gnu) whose tests run under
# qemu-user: `ctest` in such a build runs every test through CMAKE_CROSSCOMPILING_EMULATOR.
#
#   scripts/install_arm_deps.sh        # cross compiler, qemu-user, the arm64 root (see there)
#   cmake -S . -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-arm && QEMU_CPU=cortex-a53 ctest --test-dir build-arm
#
# Settings (cache variables, defaults from the environment variables of the same name):
#   MPDET_ARM_ROOT  the arm64 root with the target's libraries (default /opt/mpdet-arm64-root)
#   MPDET_QEMU_CPU  a fixed qemu CPU model (e.g. cortex-a53: ARMv8.0, no dot product; max:
#                   everything qemu emulates). Empty (the default) leaves the choice to the run:
#                   qemu reads QEMU_CPU from the environment, so one build runs under any model.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT DEFINED MPDET_ARM_ROOT)
  if(DEFINED ENV{MPDET_ARM_ROOT})
    set(MPDET_ARM_ROOT "$ENV{MPDET_ARM_ROOT}")
  else()
    set(MPDET_ARM_ROOT /opt/mpdet-arm64-root)
  endif()
endif()
set(MPDET_ARM_ROOT "${MPDET_ARM_ROOT}" CACHE PATH "arm64 root holding the target's libraries")
if(NOT DEFINED MPDET_QEMU_CPU)
  set(MPDET_QEMU_CPU "$ENV{MPDET_QEMU_CPU}")
endif()
set(MPDET_QEMU_CPU "${MPDET_QEMU_CPU}" CACHE STRING "qemu -cpu model for the tests (empty: QEMU_CPU at run time, else qemu's default, max)")
if(NOT EXISTS "${MPDET_ARM_ROOT}/usr/lib/aarch64-linux-gnu")
  message(FATAL_ERROR "no arm64 root at ${MPDET_ARM_ROOT}: run scripts/install_arm_deps.sh")
endif()
# try_compile projects see these too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MPDET_ARM_ROOT MPDET_QEMU_CPU)

# Libraries, headers and CMake packages come from the cross toolchain and the arm64 root only.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu "${MPDET_ARM_ROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR}
    "${MPDET_ARM_ROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${MPDET_ARM_ROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${MPDET_ARM_ROOT}")

# The root's /usr/include (GoogleTest, pugixml, json, CLI11 headers) is searched after the cross
# compiler's own C and C++ headers, never before them: the compiler then reports it as an implicit
# directory and CMake does not turn it into an -isystem that would shadow libstdc++'s wrappers.
# Library directories of the root (BLAS and LAPACK sit behind Debian alternatives, which an
# extracted root does not set up, so their own directories are listed).
set(_mpdet_root_lib "")
foreach(_dir usr/lib/aarch64-linux-gnu lib/aarch64-linux-gnu usr/lib usr/lib/aarch64-linux-gnu/blas
             usr/lib/aarch64-linux-gnu/lapack)
  string(APPEND _mpdet_root_lib "${MPDET_ARM_ROOT}/${_dir}:")
endforeach()
string(REGEX REPLACE ":$" "" _mpdet_root_lib "${_mpdet_root_lib}")
set(CMAKE_C_FLAGS_INIT "-idirafter ${MPDET_ARM_ROOT}/usr/include")
set(CMAKE_CXX_FLAGS_INIT "-idirafter ${MPDET_ARM_ROOT}/usr/include")
# The root's libraries pull in further ones (OpenCV's codecs, ...) that the linker must resolve.
foreach(_kind EXE SHARED MODULE)
  set(CMAKE_${_kind}_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_mpdet_root_lib}")
endforeach()

# The tests run under qemu-user with the root as the guest's / for libraries: its own loader and
# C library. (-L /usr/aarch64-linux-gnu with the root's libraries on LD_LIBRARY_PATH would pair
# the cross loader with the root's libc.so.6, another build of glibc: thread creation hangs.)
find_program(MPDET_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${MPDET_QEMU_AARCH64};-L;${MPDET_ARM_ROOT};-E;LD_LIBRARY_PATH=${_mpdet_root_lib}")
if(MPDET_QEMU_CPU)
  list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -cpu "${MPDET_QEMU_CPU}")
endif()

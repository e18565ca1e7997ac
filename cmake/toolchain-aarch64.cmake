# cmake/toolchain-aarch64.cmake — cross-compile durq for aarch64 (arm64) on a Debian amd64 host.
# Owns: the compiler, the find paths and the pkg-config search for an arm64 build, and the qemu
# emulator CTest runs the test binaries through. Used by scripts/test-aarch64.sh, which installs
# what it needs (gcc-aarch64-linux-gnu, qemu-user, the :arm64 -dev packages).
#
# Libraries come from Debian multiarch (/usr/lib/aarch64-linux-gnu, headers in /usr/include),
# except Concurrency Kit: libck-dev:arm64 cannot be installed next to libck-dev:amd64 (both ship
# /usr/include/ck_md.h, which differs: CK_MD_RMO on arm64, CK_MD_TSO on amd64), so the script
# unpacks the arm64 package into DURQ_AARCH64_CK_ROOT and writes a ck.pc that points there. Its
# -I comes before /usr/include, so every file that includes ck gets the arm64 ck_md.h.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs are the host's; libraries and headers from the cross sysroot, then multiarch paths
# (lib/aarch64-linux-gnu is searched before lib/, never lib/x86_64-linux-gnu).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config: only arm64 .pc files (PKG_CONFIG_LIBDIR replaces the host's default path).
# try_compile re-reads this file (in-process, same environment): hand it the variable too, or it
# would reset PKG_CONFIG_LIBDIR without the ck directory before pkg_check_modules runs.
set(DURQ_AARCH64_CK_ROOT "" CACHE PATH "Where scripts/test-aarch64.sh unpacked libck-dev:arm64")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DURQ_AARCH64_CK_ROOT)
set(_durq_pc /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
if(DURQ_AARCH64_CK_ROOT)
  set(_durq_pc ${DURQ_AARCH64_CK_ROOT}/pkgconfig:${_durq_pc})
endif()
set(ENV{PKG_CONFIG_LIBDIR} ${_durq_pc})
set(ENV{PKG_CONFIG_PATH} "")

# CTest runs every test binary through qemu. -L / : the loader and libc both come from
# libc6:arm64 (multiarch, /lib/aarch64-linux-gnu). Not -L /usr/aarch64-linux-gnu: there the loader
# is libc6-arm64-cross's (2.36-8cross1) but libc.so.6 still resolves to libc6:arm64's
# (2.36-9+deb12uN), and with that mismatched pair the first pthread_create/join never returns.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)

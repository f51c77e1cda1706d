# GPAW build configuration for `make env` (GPAW_CONFIG points here).
# Debian packages needed first: libxc-dev libopenblas-dev libfftw3-dev.
# g++ (plain gcc stops on a C++ header); BLAS must be named explicitly, or
# GPAW builds without it; no MPI (samples run as separate processes).
compiler = 'g++'
mpi = False
fftw = True
libraries += ['blas', 'fftw3']  # noqa: F821 (GPAW's build defines `libraries`)

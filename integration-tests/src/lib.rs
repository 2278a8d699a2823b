//! Whole-process tests of the gmr example binaries live in `tests/`.

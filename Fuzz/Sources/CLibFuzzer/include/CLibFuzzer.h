// libFuzzer's driver and mutator entry points (compiler-rt's FuzzerInterface.h and
// FuzzerDriver), declared for Swift. The fuzz executable has its own `main`, which hands
// over to `LLVMFuzzerRunDriver`; the custom mutator calls `LLVMFuzzerMutate` for plain
// byte-level mutations.
#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer with the command line `argc`/`argv` and the test callback.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*user_callback)(const uint8_t *data, size_t size));

/// libFuzzer's own mutation of `data` (of `size` bytes, at most `max_size`); returns the new size.
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#endif

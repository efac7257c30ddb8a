// Only a header: libFuzzer itself is linked by `-sanitize=fuzzer`.

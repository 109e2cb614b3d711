"""Using a finished run: load its best model; evaluate, predict and export."""

# Texts per forward pass of `nlptune predict` (sorted by length); here, without torch, so that the command's --help
# can show it. On a 2-core AMX CPU (busy: indicative), MiniLM ran 512 sst2 texts fastest at 32-64 in bf16 and in
# fp32; at 128 it was 15-50 % slower: larger activations for the same padding.
PREDICT_BATCH_SIZE = 64

"""Golden models: the hardware's integer arithmetic, bit for bit, in vectorized torch."""

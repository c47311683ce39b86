"""Co-simulation: Verilator builds (cached), cocotb testbenches and the engine bank."""

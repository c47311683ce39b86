"""Session-wide pytest hooks.

The Icarus Verilog testbenches (tests/test_icarus.py) are collected only when ``iverilog`` and
``vvp`` are on ``PATH``; otherwise they are not collected (named explicitly on the command
line: deselected) — never skipped — and the session says so in its header and in one line of
the terminal summary.
"""

from zohw.sim.icarus import iverilog_available

ICARUS = iverilog_available()
ICARUS_TESTS = ["test_icarus.py"]

collect_ignore = [] if ICARUS else ICARUS_TESTS


def _icarus_line():
    if ICARUS:
        from zohw.sim.icarus import ICARUS as plugin

        return f"Icarus testbenches: run ({plugin.version()})"
    return "Icarus testbenches: not run (iverilog not found)"


def pytest_collection_modifyitems(config, items):
    if ICARUS:
        return
    drop = [item for item in items if item.path.name in ICARUS_TESTS]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item.path.name not in ICARUS_TESTS]


def pytest_report_header(config):
    return _icarus_line()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ICARUS:
        terminalreporter.write_line(_icarus_line())

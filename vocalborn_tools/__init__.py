"""Engine tooling used only by scripts/, bench/ and the tests: never shipped in the wheel.

``calibration`` (the scorer's calibration set, scripts/calibrate.py) and ``perturb`` (seeded
noise and speed changes for the robustness runs). Import them from the repository root: the tests
have it on ``sys.path``; scripts/ and bench/ put it there themselves.
"""

"""Script 06: the one file made ready for a small ARM board (Raspberry Pi class).

    operators    the ops a graph uses (Loop and If bodies included) against required_operators.config
    ort_format   .onnx -> .ort with onnxruntime's converter, the operator config, checked; up-to-date stamps
    runner       the device's whole program: onnxruntime + numpy + wave, small-board session options
    prepare      the job of 06: convert per precision, check the .ort against the .onnx on the sample, the folder to copy
    memory       peak RSS and load time of the runner, small-board options vs defaults, each in its own process
    arm64        the runner inside an arm64 chroot under qemu-user, on a chosen emulated core
"""

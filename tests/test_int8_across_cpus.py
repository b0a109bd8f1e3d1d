"""int8 on any CPU: which kernels run here, and the tolerance int8 gets where kernels differ."""

from __future__ import annotations

from pathlib import Path

from int8_tolerance import INT8_TOKEN_EDITS, token_edits

from whisper_lab.compare.throughput import ARM_FEATURES, X86_FEATURES, this_cpu

# The first core of an ARM64 server (Neoverse N1, as /proc/cpuinfo prints it) and of an Intel Xeon with AMX.
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
"""
XEON_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8 avx512_fp16
"""


def test_this_cpu_names_the_features_it_really_has():
    cpu = this_cpu()
    info = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in info.splitlines() if line.startswith(("flags", "Features"))).split(":", 1)[1].split())
    assert cpu.name and set(cpu.features) <= flags
    assert set(cpu.features) == flags & set(X86_FEATURES if "avx2" in flags or "sse2" in flags else ARM_FEATURES)
    print(cpu.describe())


def test_cpu_kinds_are_told_apart(tmp_path):
    (tmp_path / "arm").write_text(ARM_CPUINFO)
    (tmp_path / "xeon").write_text(XEON_CPUINFO)
    arm, xeon = this_cpu(tmp_path / "arm"), this_cpu(tmp_path / "xeon")
    assert arm.features == ("asimd", "asimddp") and "SDOT" in arm.int8_kernel and "0xd0c" in arm.name
    assert xeon.name.startswith("Intel(R) Xeon(R)") and "amx_int8" in xeon.features and "AMX" in xeon.int8_kernel


def test_token_edits_count_what_differs():
    americans = [400, 370, 452, 7177, 6280, 11, 1029, 406]  # " And so my fellow Americans , ask not"
    assert token_edits(americans, americans) == 0
    assert token_edits(americans, americans[:5] + americans[6:]) == 1  # the comma the VNNI Xeon left out
    assert token_edits(americans, americans[:5] + [13] + americans[6:]) == 1  # a full stop instead
    assert token_edits(americans, americans[1:] + [0]) == 2
    assert token_edits([], americans) == len(americans)
    assert INT8_TOKEN_EDITS == 1

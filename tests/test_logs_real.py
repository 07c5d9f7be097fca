"""Real plotter output pasted by users in issue threads, read as a farmer
needs it: which plotter, its k, its phase, and the line that says what went
wrong.  Each excerpt names its source; the lines are as posted."""
from agent.vocab.logread import analyze_log

# https://github.com/madMAx43v3r/chia-gigahorse/issues/301 (Gigahorse 3.0, a CUDA
# failure in phase 3; the C++ runtime's what() that follows is empty)
GH_301 = """\
Gigahorse 3.0 k32 CUDA plotter - 94d0ea0
Plot Format: mmx-v3.0
Network Port: 8444 [chia]
No. GPUs: 1
No. Streams: 4
Direct IO: No
Final Destination: /chia/farm4/
Final Destination: /chia/farm2/
Final Destination: /chia/farm3/
Final Destination: /chia/farm1/
Bucket Chunk Size: 8 MiB
Max Pinned Memory: 480 GiB
Number of Plots: infinite
Initialization took 0.15 sec
Crafting plot 1 out of -1 (2024/04/07 01:53:38)
Phase 1 took 143.429 sec, 4286910974 proofs (0.998124)
Phase 2 took 5.557 sec, 7.90309 GB/s up, 0.182787 GB/s down
[P3] Setup took 0.041 sec
P3 upload thread failed with: CUDA error 719: unspecified launch failure
P3 upload thread failed with: P3 download thread failed with: CUDA error 719: unspecified launch failureP3 download thread failed with: CUDA error 719: unspecified launch failureCUDA error 719: unspecified launch failure
P3 upload thread failed with: CUDA error 719: unspecified launch failure
P3 upload thread failed with: CUDA error 719: unspecified launch failure


terminate called after throwing an instance of 'std::runtime_error'
terminate called recursively
terminate called recursively
terminate called recursively
  what():
"""

# https://github.com/madMAx43v3r/chia-gigahorse/issues/250 (a what() that names
# the CUDA error: kept whole)
GH_250 = """\
terminate called after throwing an instance of 'std::runtime_error'
  what():  failed to allocate 536870912 bytes of MEM_TYPE_DEVICE: CUDA error 2: out of memory
"""

# https://github.com/madMAx43v3r/chia-gigahorse/issues/17 (a k34 build, log
# numbered by `cat -n` as posted; cut after phase 1's third table)
GH_17 = """\
Chia k34 next-gen CUDA plotter - c892fce
Plot Format: mmx-v2.4
Network Port: 8444 [chia]
No. GPUs: 1
Crafting plot 1 out of 1 (2023/02/19 14:32:39)
Compression Level: C8 (xbits = 8, final table = 4)
[P1] Setup took 1.13 sec
[P1] Table 1 took 94.079 sec, 17179869184 entries, 16792288 max, 17023 tmp, 0 GB/s up, 1.91333 GB/s down
[P1] Table 2 took 65.149 sec, 17179493109 entries, 16789119 max, 17016 tmp, 2.21032 GB/s up, 3.99091 GB/s down
[P1] Table 3 took 105.42 sec, 17178732824 entries, 16788682 max, 17002 tmp, 1.97302 GB/s up, 3.9841 GB/s down
"""

# https://github.com/Chia-Network/bladebit/issues/268 (bladebit_cuda: the
# message is on the line after the header, a backtrace follows)
BB_268 = """\
*** Panic!!! *** Fatal Error:
Failed to write to plot with error 5:
./bladebit_cuda(+0xcf8cb)[0x55a6a165d8cb]
./bladebit_cuda(+0xcf0af)[0x55a6a165d0af]
./bladebit_cuda(+0xbdb5e)[0x55a6a164bb5e]
./bladebit_cuda(+0xbe510)[0x55a6a164c510]
./bladebit_cuda(+0xd062d)[0x55a6a165e62d]
/lib/x86_64-linux-gnu/libc.so.6(+0x94b43)[0x7f42d3445b43]
/lib/x86_64-linux-gnu/libc.so.6(+0x126a00)[0x7f42d34d7a00]
"""

# https://github.com/Chia-Network/bladebit/issues/41 (a crash in phase 4, the
# log found mid-run: no line before the backtrace names bladebit)
BB_41_CRASH = """\
Running Phase 4
  Writing P7.
  Finished writing P7 in 0.41 seconds.
  Writing C1 table.
  Finished writing C1 table in 0.00 seconds.
  Writing C2 table.
  Finished writing C2 table in 0.00 seconds.
  Writing C3 table.
*** Crashed! ***
./bladebit(+0x13b54)[0x5615194e9b54]
/lib/x86_64-linux-gnu/libc.so.6(+0x46210)[0x7effd02af210]
./bladebit(+0xe2ed)[0x5615194e42ed]
./bladebit(+0x14160)[0x5615194ea160]
./bladebit(+0x12a95)[0x5615194e8a95]
./bladebit(+0x10389)[0x5615194e6389]
/lib/x86_64-linux-gnu/libpthread.so.0(+0x9609)[0x7effd0464609]
/lib/x86_64-linux-gnu/libc.so.6(clone+0x43)[0x7effd038b293]
"""

# the same thread, its second error (phase 3)
BB_41_FATAL = """\
Fatal Error:
  Overran park buffer for table 3.
"""

# https://github.com/Chia-Network/bladebit/issues/389 (`chia plotters bladebit
# ramplot`: chia prefixes the plotter's stderr with "STDERR: ")
BB_389 = """\
Progress update: 0.48
  Prunning table 4...
  Finished prunning table 4 in 9.35 seconds.
Progress update: 0.51
  Prunning table 3...
  Finished prunning table 3 in 9.02 seconds.
Progress update: 0.55
Finished Phase 2 in 28.75 seconds.
Running Phase 3
  Compressing tables 2 and 3...
STDERR: *** Crashed! ***

STDERR: /home/jh/chia-blockchain/venv/bin/bladebit_cuda(_Z12CrashHandleri+0xaa)[0x55a6e54e3eda]

STDERR: /lib/x86_64-linux-gnu/libc.so.6(+0x42520)[0x7f425d036520]

STDERR: /lib/x86_64-linux-gnu/libc.so.6(+0x1afbba)[0x7f425d1a3bba]

STDERR: /home/jh/chia-blockchain/venv/bin/bladebit_cuda(_Z15WriteParkThreadP12WriteParkJob+0x218)[0x55a6e564f1f8]

STDERR: /home/jh/chia-blockchain/venv/bin/bladebit_cuda(_ZN10ThreadPool17FixedThreadRunnerEPv+0x52)[0x55a6e5659822]

STDERR: /home/jh/chia-blockchain/venv/bin/bladebit_cuda(_ZN6Thread17ThreadStarterUnixEPS_+0x80)[0x55a6e54e4f90]

STDERR: /lib/x86_64-linux-gnu/libc.so.6(+0x94b43)[0x7f425d088b43]

STDERR: /lib/x86_64-linux-gnu/libc.so.6(+0x126a00)[0x7f425d11aa00]

STDERR: Dumping crash to crash.log
"""

# https://github.com/Chia-Network/bladebit/issues/260 (crashed generating f1)
BB_260 = """\
Started plot.
Running Phase 1
Table 1: F1 generation
Generating f1...

*** Crashed! ***
/home/hajes/bladebit/build/bladebit(_Z12CrashHandleri+0x8a)[0x56243da09cea]
/usr/lib64/glibc-hwcaps/x86-64-v3/libc.so.6(+0x3aa60)[0x56243d23ba60]
/home/hajes/bladebit/build/bladebit(+0x5fc1f)[0x56243d97ac1f]
/usr/lib64/glibc-hwcaps/x86-64-v3/libc.so.6(__clone+0x40)[0x56243d31db00]
"""


def test_gigahorse_3_is_gigahorse_and_its_cuda_error_is_the_cause():
    s = analyze_log(GH_301)
    assert (s["plotter"], s["k"], s["phase"]) == ("gigahorse", 32, [3, 0])
    assert s["error"] == "P3 upload thread failed with: CUDA error 719: unspecified launch failure"


def test_a_what_that_names_the_cuda_error_is_kept_whole():
    s = analyze_log(GH_250, "gigahorse")
    assert s["error"] == ("std::runtime_error: failed to allocate 536870912 bytes of "
                          "MEM_TYPE_DEVICE: CUDA error 2: out of memory")


def test_the_k34_build_is_gigahorse_with_its_k_and_phase():
    s = analyze_log(GH_17)
    assert (s["plotter"], s["k"], s["phase"], s["error"]) == ("gigahorse", 34, [1, 4], None)
    assert (s["compress"], s["compress_format"]) == (8, "gigahorse")


def test_bladebit_fatal_error_shows_the_message_on_the_next_line_not_a_frame():
    assert analyze_log(BB_268, "bladebit")["error"] == (
        "Fatal Error: Failed to write to plot with error 5:")
    assert analyze_log(BB_41_FATAL, "bladebit")["error"] == (
        "Fatal Error: Overran park buffer for table 3.")


def test_a_crash_names_where_it_happened_never_a_backtrace_frame():
    s = analyze_log(BB_41_CRASH)
    # no line before the backtrace names bladebit: the lines read before are kept
    assert (s["plotter"], s["phase"]) == ("bladebit", [4, 4])
    assert s["error"] == "crashed after: Writing C3 table."
    s = analyze_log(BB_389, "bladebit")
    assert (s["phase"], s["error"]) == ([3, 2], "crashed after: Compressing tables 2 and 3...")
    s = analyze_log(BB_260)
    assert (s["plotter"], s["phase"], s["error"]) == (
        "bladebit", [1, 0], "crashed after: Generating f1...")


def test_a_partial_log_gets_its_phase_from_its_last_marker():
    # a job found mid-run: its log rotated, only the end of phase 1 is left
    tail = "\n".join(GH_17.splitlines()[-2:]) + "\n"
    assert analyze_log(tail, "gigahorse")["phase"] == [1, 4]
    assert analyze_log(BB_389.split("Running Phase 3")[1], "bladebit")["phase"] == [3, 2]

"""Each plotter gets its real command line; values survive quoting; a broken
inventory template is a one-line error naming file, host and key."""
import pytest

from orchestrator.core.plotcmd import build_argv
from orchestrator.errors import UserError
from tests.factories import plotter

FARMER, POOL, CONTRACT = "a" * 96, "b" * 96, "xch1" + "c" * 58


def test_chia_real_flags_small_k_needs_override():
    h = plotter(plotter="chia", k=25, threads=4, buckets=64, buffer_mib=2000, tmp2_dir="/t2",
                farmer_key=FARMER, pool_contract=CONTRACT)
    assert build_argv(h, "/t0", "/d0") == (
        "chia", "plots", "create", "-k", "25", "-r", "4", "-u", "64", "-b", "2000",
        "-t", "/t0", "-2", "/t2", "-d", "/d0", "-n", "1", "-f", FARMER, "-c", CONTRACT,
        "--override-k")
    k32 = build_argv(plotter(plotter="chia", k=32, pool_key=POOL), "/t0", "/d0")
    assert "--override-k" not in k32 and "-2" not in k32 and "-f" not in k32
    assert k32[-2:] == ("-p", POOL)


def test_madmax_dirs_get_trailing_slash_and_keys_are_required():
    h = plotter(plotter="madmax", k=32, threads=8, buckets=256, tmp2_dir="/ram/",
                farmer_key=FARMER, pool_key=POOL)
    assert build_argv(h, "/t0", "/d0") == (
        "chia_plot", "-k", "32", "-r", "8", "-u", "256", "-t", "/t0/", "-2", "/ram/",
        "-d", "/d0/", "-n", "1", "-f", FARMER, "-p", POOL)
    with pytest.raises(UserError, match=r"^inventory.yaml: host p1: farmer_key is required by plotter madmax$"):
        build_argv(plotter(plotter="madmax", pool_key=POOL), "/t0", "/d0")
    with pytest.raises(UserError, match=r"host p1: pool_key or pool_contract is required"):
        build_argv(plotter(plotter="madmax", farmer_key=FARMER), "/t0", "/d0")


def test_bladebit_modes():
    base = dict(plotter="bladebit", threads=16, farmer_key=FARMER, pool_contract=CONTRACT)
    assert build_argv(plotter(**base), "/t0", "/d0") == (
        "bladebit", "-t", "16", "-f", FARMER, "-c", CONTRACT, "-n", "1", "ramplot", "/d0")
    disk = plotter(bladebit_mode="diskplot", buckets=256, tmp2_dir="/t2", **base)
    assert build_argv(disk, "/t0", "/d0") == (
        "bladebit", "-t", "16", "-f", FARMER, "-c", CONTRACT, "-n", "1", "diskplot",
        "-t1", "/t0", "-t2", "/t2", "-b", "256", "/d0")
    cuda = plotter(bladebit_mode="cudaplot", **base)
    assert build_argv(cuda, "/t0", "/d0")[-2:] == ("cudaplot", "/d0")


def test_chiapos_launcher_line_uses_tmp_when_no_tmp2():
    h = plotter(plotter="chiapos", k=18, threads=2, buckets=32, buffer_mib=300)
    assert build_argv(h, "/t0", "/d0") == (
        "plotfleet-chiapos", "-k", "18", "-t", "/t0", "-2", "/t0", "-d", "/d0",
        "-b", "300", "-u", "32", "-r", "2")


@pytest.mark.parametrize("kind", ["chia", "madmax", "bladebit", "chiapos"])
def test_paths_with_spaces_and_quotes_stay_one_argument(kind):
    h = plotter(plotter=kind, bladebit_mode="diskplot", farmer_key=FARMER, pool_key=POOL,
                tmp2_dir="/mnt/it's tmp2")
    argv = build_argv(h, "/mnt/my tmp; rm -rf ~", "/mnt/dst $HOME")
    assert any(a.rstrip("/") == "/mnt/my tmp; rm -rf ~" for a in argv)
    assert any(a.rstrip("/") == "/mnt/dst $HOME" for a in argv)
    assert any(a.rstrip("/") == "/mnt/it's tmp2" for a in argv)


def test_inventory_template_overrides_and_sees_host_vars():
    h = plotter(plotter_command="nice -n {{ niceness }} chia plots create -k {{ k }} "
                                "-t {{ tmp_dir | q }} -d {{ dst_dir | q }} {{ extra | q }} # {{ host }}",
                vars={"niceness": 15, "extra": "--nobitfield", "k": "ignored"}, k=27)
    assert build_argv(h, "/a b", "/d") == (
        "nice", "-n", "15", "chia", "plots", "create", "-k", "27", "-t", "/a b", "-d", "/d",
        "--nobitfield", "#", "p1")


@pytest.mark.parametrize("template,message", [
    ("chia -k {{ k }", "inventory.yaml: host p1: plotter_command: unexpected '}' (line 1)"),
    ("chia\n-t {{ tmp_dir | q }} -x {{ nope }}", "inventory.yaml: host p1: plotter_command: 'nope' is undefined"),
    ("chia {{ tmp_dir | nosuchfilter }}", "inventory.yaml: host p1: plotter_command: No filter named 'nosuchfilter'. (line 1)"),
    ("chia 'unbalanced", "inventory.yaml: host p1: plotter_command: No closing quotation"),
    ("{# nothing #}", "inventory.yaml: host p1: plotter_command: renders to an empty command"),
])
def test_broken_override_is_one_line_naming_file_host_and_key(template, message):
    h = plotter(plotter_command=template, source="inventory.yaml")
    with pytest.raises(UserError) as e:
        build_argv(h, "/t0", "/d0")
    assert str(e.value) == message and "\n" not in str(e.value)


def test_validate_catches_a_broken_plotter_before_any_pass():
    from orchestrator.core.plotcmd import validate
    validate(plotter(plotter="chia"))
    with pytest.raises(UserError, match="host p1: plotter_command: 'farmer' is undefined"):
        validate(plotter(plotter_command="chia -f {{ farmer }}"))

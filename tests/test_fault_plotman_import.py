"""`plotfleet import-plotman` against broken, impostor and hostile files:
one line per host naming the problem, never a traceback, nothing read that
is not a plotman.yaml."""
import os
import shutil

import pytest
import yaml

from orchestrator.config.plotman_import import PlotmanConfigError, translate
from tests.cli import plotfleet
from tests.test_import_plotman import DEFAULT, DEFAULT_YAML


def _with(path, value):
    doc = yaml.safe_load(DEFAULT)
    *up, last = path.split(".")
    node = doc
    for k in up:
        node = node[k]
    node[last] = value
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("path, value, why", [
    ("directories.dst", 5, "directories.dst must be a list, got int '5'"),
    ("scheduling.tmp_overrides", [1, 2], "scheduling.tmp_overrides must be a mapping, got list"),
    ("scheduling.tmp_overrides./mnt/tmp/03", 5, "scheduling.tmp_overrides./mnt/tmp/03 must be a mapping"),
    ("scheduling.global_max_jobs", "many", "scheduling.global_max_jobs must be a number, got str"),
    ("plotting.type", ["chia"], "plotting.type must be text, got list"),
    ("plotting.chia", 5, "plotting.chia must be a mapping, got int"),
    ("archiving.target", ["local_rsync"], "archiving.target must be text, got list"),
    ("archiving.env", "x", "archiving.env must be a mapping, got str"),
    ("archiving.env.options", 5, "archiving.env.options must be text, got int"),
])
def test_a_setting_of_the_wrong_type_is_named(path, value, why):
    with pytest.raises(PlotmanConfigError) as e:
        translate("p1", _with(path, value))
    assert why in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, why", [
    ("\x00garbage", "not YAML: unacceptable character #x0000"),
    (DEFAULT + "\n1: one\n", "1: a key that is not text"),
], ids=["nul-bytes", "number-key"])
def test_garbage_is_one_line(text, why):
    with pytest.raises(PlotmanConfigError) as e:
        translate("p1", text)
    assert str(e.value).startswith(why) and "\n" not in str(e.value), str(e.value)


def test_the_agent_reads_no_impostor_plotman_yaml(agent, tmp_path):
    shadow = tmp_path / "shadow.yaml"
    (tmp_path / "shadow").symlink_to("/etc/shadow")
    shadow.symlink_to(tmp_path / "shadow")          # two hops, the last not a .yaml
    r = agent.raw("read_plotman_config", path=str(shadow))
    assert not r["ok"] and r["error"] == f"{shadow} links to /etc/shadow, not a .yaml file"
    real = tmp_path / "configs" / "plotman.yml"     # a link to a real plotman.yaml is fine
    real.parent.mkdir()
    shutil.copy(DEFAULT_YAML, real)
    (tmp_path / "plotman.yaml").symlink_to(real)
    assert agent.ok("read_plotman_config", path=str(tmp_path / "plotman.yaml"))["text"] == DEFAULT
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(5 << 30)                         # sparse: 5 GiB, no disk used
    r = agent.raw("read_plotman_config", path=str(huge))
    assert not r["ok"] and r["code"] == "refused" and "is 5368709120 bytes" in r["error"]
    (tmp_path / "dir.yaml").mkdir()
    r = agent.raw("read_plotman_config", path=str(tmp_path / "dir.yaml"))
    assert not r["ok"] and "is not a file" in r["error"]


def test_a_broken_file_is_one_line_per_host_over_ssh(ssh_fleet, tmp_path):
    f = ssh_fleet(n_plotters=2)
    conf = tmp_path / "plotman.yaml"
    conf.write_text(_with("directories.dst", 5))
    src = tmp_path / "hosts.yaml"
    src.write_text(yaml.safe_dump({"all": {"hosts": {
        n: {k: v for k, v in f.host_vars(n).items() if k.startswith("ansible_")} for n in f.hosts}}}))
    r = plotfleet("import-plotman", "--inventory", src, "--path", conf, timeout=60)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [
        f"plotfleet: {n}: {conf}: directories.dst must be a list, got int '5'"
        for n in ("plotter1", "plotter2")]
    os.remove(conf)
    r = plotfleet("import-plotman", "--inventory", src, "--path", conf, timeout=60)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [f"plotfleet: {n}: cannot read {conf}: No such file or directory"
                                     for n in ("plotter1", "plotter2")], r.stderr

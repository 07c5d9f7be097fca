"""`plotfleet import-plotman`: each host's plotman.yaml, read over its SSH
session, becomes inventory YAML that loads and schedules as plotman would;
what cannot be carried over is listed with the reason."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from orchestrator.config.inventory import load_inventory
from orchestrator.config.plotman_import import PlotmanConfigError, translate
from orchestrator.core.scheduler import schedule
from tests.agent_helpers import AgentProc
from tests.cli import REPO, plotfleet
from tests.factories import NOW, fleet, host_state, job

DEFAULT_YAML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "plotman",
                            "plotman.yaml")
DEFAULT = open(DEFAULT_YAML).read()


def test_plotmans_default_config_translates_key_for_key():
    t = translate("p1", DEFAULT)
    v = t.vars
    assert v["tmp_dirs"] == ["/mnt/tmp/00", "/mnt/tmp/01", "/mnt/tmp/02", "/mnt/tmp/03"]
    assert v["dst_dirs"] == ["/mnt/dst/00", "/mnt/dst/01"] and "tmp2_dir" not in v
    assert v["log_dir"] == "~/.local/share/plotman/plots"     # plotman's own default
    assert (v["global_max_jobs"], v["global_stagger_m"], v["tmpdir_max_jobs"]) == (12, 30, 3)
    assert (v["tmpdir_stagger_phase_major"], v["tmpdir_stagger_phase_minor"]) == (2, 1)
    assert v["tmp_overrides"]["/mnt/tmp/03"] == {"tmpdir_stagger_phase_major": 3,
                                                 "tmpdir_stagger_phase_minor": 1,
                                                 "tmpdir_max_jobs": 2}
    assert (v["plotter"], v["k"], v["threads"], v["buckets"], v["buffer"]) == \
        ("chia", 32, 2, 128, 3389)
    assert v["transfer"] == "local"
    notes = {u.key: u.reason for u in t.untranslated}
    assert set(notes) == {"archiving.env.site_root", "user_interface", "commands"}
    assert "/farm/sites" in notes["archiving.env.site_root"]
    assert t.group == "plotters"


def test_what_plotman_does_differently_is_listed_not_guessed():
    doc = yaml.safe_load(DEFAULT)
    doc["scheduling"]["global_max_jobs"] = 0
    doc["scheduling"]["tmp_overrides"]["/mnt/elsewhere"] = {"tmpdir_max_jobs": 1}
    doc["plotting"]["chia"]["e"] = True
    doc["directories"].pop("dst")
    doc["directories"]["tmp2"] = "/mnt/tmp/a"
    doc["archiving"] = {"target": "rsyncd", "env": {
        "user": "farmer", "host": "h1", "site_root": "/srv", "site": "plots",
        "options": "--bwlimit=50000 --preallocate --remove-source-files --skip-compress plot "
                   "--whole-file"}}
    t = translate("p1", yaml.safe_dump(doc))
    notes = {u.key: u.reason for u in t.untranslated}
    # plotman starts nothing at 0, plotfleet reads 0 as no limit: not a plotter then
    assert t.group == "plotman_idle" and "global_max_jobs" not in t.vars
    assert "names a dir not in directories.tmp" in notes["scheduling.tmp_overrides./mnt/elsewhere"]
    assert "/mnt/elsewhere" not in t.vars["tmp_overrides"]
    assert notes["plotting.chia.e"].startswith("is True: plotfleet has no key")
    assert "dst_dirs" not in t.vars and t.vars["tmp2_dir"] == "/mnt/tmp/a"
    assert t.vars["transfer"] == "ssh" and t.vars["transfer_bwlimit_kbps"] == 50000
    assert "farmer@h1" in notes["archiving.env.host"]
    assert "archiving.env.options" not in notes          # the target's own default options


@pytest.mark.parametrize("text, why", [
    ("directories: [\n", "not YAML (line 2)"),
    ("- a\n- b\n", "no mapping at the top"),
    ("directories: {tmp: /mnt/tmp}\n", "directories.tmp must be a list"),
])
def test_a_file_that_is_no_plotman_config_is_named(text, why):
    with pytest.raises(PlotmanConfigError, match=None) as e:
        translate("p1", text)
    assert why in str(e.value)


def test_agent_reads_plotmans_default_path_under_xdg_config_home(tmp_path, monkeypatch):
    conf = tmp_path / "xdg" / "plotman"
    conf.mkdir(parents=True)
    shutil.copy(DEFAULT_YAML, conf / "plotman.yaml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    agent = AgentProc()
    try:
        got = agent.ok("read_plotman_config")
        assert got["path"] == str(conf / "plotman.yaml") and got["text"] == DEFAULT
        (tmp_path / "notes.txt").write_text("secret")
        bad = agent.raw("read_plotman_config", path=str(tmp_path / "notes.txt"))
        assert not bad["ok"] and "is not a .yaml file" in bad["error"]
        gone = agent.raw("read_plotman_config", path=str(tmp_path / "none.yaml"))
        assert not gone["ok"] and gone["code"] == "missing"
    finally:
        agent.close()


def test_import_over_ssh_loads_and_schedules_as_plotman(ssh_fleet, tmp_path):
    f = ssh_fleet(n_plotters=2)
    conf = tmp_path / "plotman" / "plotman.yaml"
    conf.parent.mkdir()
    shutil.copy(DEFAULT_YAML, conf)
    src = tmp_path / "hosts.yaml"
    conn = {n: {k: v for k, v in f.host_vars(n).items() if k.startswith("ansible_")}
            for n in f.hosts}
    src.write_text(yaml.safe_dump({"all": {"hosts": conn}}))
    f.stop("plotter2")              # one host down: the other is still translated
    r = plotfleet("import-plotman", "--inventory", src, "--path", conf, timeout=60)
    assert r.returncode == 4, r.stderr
    assert "plotfleet: plotter2: " in r.stderr
    assert "#   plotter2: not read: " in r.stdout
    assert "#   plotter1: archiving.env.site_root: /farm/sites" in r.stdout
    out = tmp_path / "inventory.yaml"
    out.write_text(r.stdout)
    inv = load_inventory(str(out))
    (p,) = inv.plotters
    assert (p.name, p.address, p.port) == ("plotter1", f.hosts["plotter1"].address,
                                           f.hosts["plotter1"].port)
    assert p.tmp_overrides["/mnt/tmp/00"]["tmpdir_stagger_phase_major"] == 1
    hosts = {p.name: p}

    def starts(*jobs):
        d = schedule(fleet(host_state(p, jobs=jobs)), hosts, NOW)
        return [(s.tmp_dir, s.dst_dir) for s in d.starts], [w.reason for w in d.waits]

    assert starts() == ([("/mnt/tmp/00", "/mnt/dst/00")], [])
    # plotman: /mnt/tmp/00 (override 1:5) takes a job past 1:5, /mnt/tmp/01 not
    # before 2:1, /mnt/tmp/03 (override 3:1) not before 3:1; of 00 and 02 the
    # one whose youngest job is furthest along wins
    js = [job(tmp="/mnt/tmp/00", dst="/mnt/dst/00", phase=(1, 6), pid=1),
          job(tmp="/mnt/tmp/01", dst="/mnt/dst/00", phase=(2, 0), pid=2),
          job(tmp="/mnt/tmp/02", dst="/mnt/dst/01", phase=(2, 1), pid=3),
          job(tmp="/mnt/tmp/03", dst="/mnt/dst/01", phase=(3, 0), pid=4)]
    assert starts(*js)[0] == [("/mnt/tmp/02", "/mnt/dst/00")]
    early = job(tmp="/mnt/tmp/02", dst="/mnt/dst/01", phase=(1, 6), pid=3)
    assert starts(*js[:2], early, js[3])[0] == [("/mnt/tmp/00", "/mnt/dst/00")]
    # global_max_jobs 12 and the 30 min stagger
    many = [job(tmp="/mnt/tmp/00", phase=(4, 0), pid=10 + i) for i in range(12)]
    assert starts(*many)[1] == ["max jobs 12/12"]
    assert starts(job(tmp="/mnt/tmp/00", phase=(4, 0), age_s=600))[1] == ["stagger 600s/1800s"]


def test_a_local_plotman_yaml_is_translated_without_an_inventory(tmp_path):
    # a farmer coming from plotman: no inventory yet, plotman.yaml in this folder
    shutil.copy(DEFAULT_YAML, tmp_path / "plotman.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PLOTFLEET_INVENTORY"}
    run = lambda *a: subprocess.run(      # noqa: E731
        [sys.executable, "-m", "orchestrator", "import-plotman", *a], cwd=tmp_path,
        env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=60)
    r = run("plotman.yaml")                 # a relative path, as typed
    assert r.returncode == 0, r.stderr
    (tmp_path / "inventory.yaml").write_text(r.stdout)
    inv = load_inventory(str(tmp_path / "inventory.yaml"))
    [h] = inv.hosts
    assert (h.name, h.connection) == ("localhost", "local")
    assert list(h.tmp_dirs) == ["/mnt/tmp/00", "/mnt/tmp/01", "/mnt/tmp/02", "/mnt/tmp/03"]
    assert "# not translated:" in r.stdout
    for bad, why in (("nope.yaml", "cannot read nope.yaml"),
                     ("inventory.yaml", "inventory.yaml: ")):     # YAML, but not plotman's
        r = run(bad)
        assert r.returncode == 2 and r.stdout == "", (bad, r.stdout)
        [line] = r.stderr.strip().splitlines()
        assert why in line and "Traceback" not in r.stderr, (bad, line)

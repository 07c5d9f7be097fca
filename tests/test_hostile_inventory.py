"""An inventory is data: templates render in jinja2's sandbox (native types
kept), absurd values are refused before they are built, and what
import-plotman writes from a host's files is never a template.  Each
refusal is one line naming file, host and key, exit 2, nothing touched."""
import os
import shutil

import yaml

from orchestrator.config.inventory import load_inventory
from tests.cli import plotfleet

PWNED = "touch {marker}"


def _inventory(tmp_path, **host_vars):
    doc = {"all": {"children": {"plotters": {"hosts": {"p1": dict(
        tmp_dirs=[str(tmp_path / "tmp")], dst_dirs=[str(tmp_path / "dst")],
        log_dir=str(tmp_path / "log"), **host_vars)}}}}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _one_line_refusal(r, path, host, key):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{path}: host {host}: {key} " in lines[0], lines[0]
    return lines[0]


def test_an_inventory_template_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    attacks = [
        "{{ cycler.__init__.__globals__.os.system('touch %s') }}" % marker,
        "{{ lipsum.__globals__['os'].system('touch %s') }}" % marker,
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ joiner.__init__.__globals__.__builtins__['open']('%s', 'w') }}" % marker,
    ]
    for attack in attacks:
        inv = _inventory(tmp_path, nice=attack)
        r = plotfleet("status", "--inventory", inv, timeout=60)
        line = _one_line_refusal(r, inv, "p1", "nice")
        assert "is refused" in line and "unsafe" in line, line
        assert not marker.exists(), attack


def test_absurd_sizes_are_one_line_not_a_hang_or_an_empty_message(tmp_path):
    for attack in ["{{ 'x' * 10**10 }}", "{{ 'x'.ljust(10**10) }}", "{{ 'x' | center(10**10) }}",
                   "{{ [0] * 10**10 }}", "{{ 7 ** 10**10 }}", "{{ range(10**10) | list }}"]:
        inv = _inventory(tmp_path, nice=attack)
        r = plotfleet("status", "--inventory", inv, timeout=60)
        line = _one_line_refusal(r, inv, "p1", "nice")
        assert line.split(": ")[-1].strip(), line     # the message says something


def test_templates_still_render_with_native_types(tmp_path):
    inv = load_inventory(str(_inventory(tmp_path, base=10, nice="{{ base + 5 }}",
                                        threads="{{ [2, 4] | max }}")))
    (h,) = inv.hosts
    assert (h.nice, h.threads) == (15, 4)


def test_import_plotman_writes_a_hosts_template_as_text(ssh_fleet, tmp_path):
    f = ssh_fleet(n_plotters=1)
    marker = tmp_path / "pwned"
    conf = tmp_path / "plotman" / "plotman.yaml"
    conf.parent.mkdir()
    doc = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "data", "plotman",
                                           "plotman.yaml")))
    evil = "/mnt/{{ cycler.__init__.__globals__.os.system('touch %s') }}" % marker
    doc["directories"]["tmp"] = [evil, "/mnt/tmp/01"]
    doc["logging"] = {"plots": "/logs/{{ 7 * 6 }}"}
    doc["commands"] = {"x\nall:\n  vars:\n    notify: json://evil": 1}
    conf.write_text(yaml.safe_dump(doc))
    src = tmp_path / "hosts.yaml"
    conn = {n: {k: v for k, v in f.host_vars(n).items() if k.startswith("ansible_")}
            for n in f.hosts}
    src.write_text(yaml.safe_dump({"all": {"hosts": conn}}))
    r = plotfleet("import-plotman", "--inventory", src, "--path", conf, timeout=60)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "inventory.yaml"
    out.write_text(r.stdout)
    assert "{{" not in "".join(line for line in r.stdout.splitlines()
                               if "!unsafe" not in line and not line.startswith("#"))
    assert all(line.startswith("#") or not line.startswith("all") for line in r.stdout.splitlines())
    (p,) = load_inventory(str(out)).plotters
    assert p.tmp_dirs[0] == evil and p.log_dir == "/logs/{{ 7 * 6 }}"
    assert not marker.exists()
    shutil.rmtree(conf.parent)

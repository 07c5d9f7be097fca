"""One pass's view (core/result.PassResult) is computed once, in the pass,
and every face reads it: pure, no SSH."""
from orchestrator.core.plan import plan
from tests import factories as f


def test_one_pass_computes_its_farm_once_for_the_plan_and_every_face(monkeypatch):
    """The scheduler, the archiver, the terminal, the dashboard, the web
    server and the alerts all read the pass's farm: it is computed once."""
    import io
    from rich.console import Console
    from orchestrator import plotloop
    from orchestrator.core import alerts, archiver, farm as farm_mod, plan as plan_mod, scheduler
    from orchestrator.serve import picture, server
    from orchestrator.ui import dashboard, dirtables, passview, views
    calls = []

    def counted(state, hosts):
        calls.append(1)
        return farm_mod.farm(state, hosts)
    for mod in (plan_mod, scheduler, views, dirtables, dashboard, picture, alerts):
        monkeypatch.setattr(mod, "farm", counted)
    monkeypatch.setattr(archiver, "farm_model", counted)
    p1 = f.plotter("p1")
    hosts = f.inventory(p1, f.harvester("h1"))
    state = f.fleet(f.host_state(p1, plots=[f.plot_file("/d0")]), f.host_state(hosts["h1"]))
    result = plotloop._result(state, hosts, plan(state, hosts, f.NOW), f.NOW)
    assert result.farm is not None and len(calls) == 1
    con = Console(file=io.StringIO(), width=200)
    con.print(views.status_view(state, hosts, result.outlooks, width=200, model=result.farm,
                                backoffs=result.backoffs))
    con.print(dashboard.screen(result, hosts, [], 200, 50, None))
    passview.PassPrinter(con, hosts, tty=True).show(result)
    latest = picture.Latest(hosts, "plot-all", "key")
    p = latest.observe(result)
    server._table_text(p, {})
    alerts.conditions(result, hosts, None, None)
    assert len(calls) == 1
    assert "h1" in con.file.getvalue()

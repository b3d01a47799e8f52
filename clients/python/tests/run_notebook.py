#!/usr/bin/env python3
"""Executes examples/getting_started.ipynb against the real server and
PostgreSQL with nbclient and the ipykernel of /usr/bin/python3 (Debian's
python3-nbclient, python3-ipykernel); fails if any cell raises.

usage: scripts/with-temp-pg python3 clients/python/tests/run_notebook.py build/debug/roastery [OUT.ipynb]
Exits 77 (skipped) without ROASTERY_TEST_DATABASE_URL. OUT.ipynb keeps the
executed notebook with its outputs."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CLIENT_DIR = os.path.dirname(harness.HERE)
NOTEBOOK = os.path.join(CLIENT_DIR, "examples", "getting_started.ipynb")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    out = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    if not harness.DATABASE_URL:
        print("run_notebook: no ROASTERY_TEST_DATABASE_URL; skipped", file=sys.stderr)
        return harness.SKIP
    try:
        import nbclient
        import nbformat
    except ImportError as e:
        print(f"run_notebook: {e}; install python3-nbclient python3-ipykernel", file=sys.stderr)
        return 1

    work = tempfile.mkdtemp(prefix="roastery-notebook-")
    srv = harness.Server(binary, "client_notebook")
    ok = False
    try:
        csv = srv.generate_sales(os.path.join(work, "sales.csv"))
        os.environ.update({
            "ROASTERY_URL": srv.url,
            "ROASTERY_TOKEN": srv.token("dana-scientist", "DataScientist"),
            "ROASTERY_SALES_CSV": csv,
            "ROASTERY_PROJECT": "demand-forecast",
            "PYTHONPATH": os.pathsep.join(filter(None, [CLIENT_DIR,
                                                        os.environ.get("PYTHONPATH")])),
            "JUPYTER_RUNTIME_DIR": os.path.join(work, "jupyter-runtime"),
            "IPYTHONDIR": os.path.join(work, "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        })
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": work}})
        t0 = time.monotonic()
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as e:
            print(f"run_notebook: a cell failed:\n{e}", file=sys.stderr)
            return 1
        finally:
            if out:
                os.makedirs(os.path.dirname(out), exist_ok=True)
                nbformat.write(nb, out)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        errors = [o for c in code_cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        if errors or not all(c.get("execution_count") for c in code_cells):
            print("run_notebook: not every cell ran cleanly", file=sys.stderr)
            return 1
        # what the notebook did is on the server
        sys.path.insert(0, CLIENT_DIR)
        from roastery_client import Client
        rc = Client(srv.url, token=os.environ["ROASTERY_TOKEN"])
        runs = list(rc.runs.list("demand-forecast", experiment="getting-started"))
        promotions = rc.models.promotions("demand-forecast", "demand")
        assert len(runs) == 2 and all(r["state"] == "completed" for r in runs), runs
        assert len(promotions) == 1 and promotions[0]["target"] == "staging", promotions
        print(f"run_notebook: {len(code_cells)} code cells ran in "
              f"{time.monotonic() - t0:.1f}s; promotion {promotions[0]['state']}")
        ok = True
        return 0
    finally:
        code = srv.stop()
        if not ok or code != 0:
            print(srv.read_log()[-4000:], file=sys.stderr)
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        if code != 0:
            print(f"run_notebook: server exited {code} on SIGTERM", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())

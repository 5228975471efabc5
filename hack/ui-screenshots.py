"""Screenshots of `glassbox ui` over a store of real tiny runs, for docs/ui (README).

    glassbox run examples/{pretrain-tiny,metriceval-tiny,metriceval-curve,kgharvest-tiny,scorer-tiny}.yaml --store S
    .venv/bin/python hack/ui-screenshots.py S docs/ui [SCORER_URL]

One PNG per view: runs.png and <kind>-<name>.png per run; with SCORER_URL (the `serving:` line of
the scorer example) the scorer's view shows a ranked answer from it. Needs hack/browser.sh.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "unit" / "ui"))

from conftest import LiveServer  # noqa: E402
from glassbox_api.store import open_store  # noqa: E402
from glassbox_ui.app import create_app  # noqa: E402
from glassbox_ui.catalog import Catalog, list_runs  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402


def main() -> int:
    store, out = open_store(sys.argv[1]), Path(sys.argv[2])
    scorer = sys.argv[3] if len(sys.argv) > 3 else ""
    out.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--hide-scrollbars"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)

    def snap(name: str) -> None:
        time.sleep(3)  # a poll or two: tables and charts drawn
        h = d.execute_script("return document.body.scrollHeight")
        d.set_window_size(1400, min(max(h + 40, 700), 1800))
        time.sleep(0.5)
        d.save_screenshot(str(out / f"{name}.png"))
        d.set_window_size(1400, 1000)

    with LiveServer(create_app(store)) as srv:
        d.get(srv.url + "/")
        snap("runs")
        for r in list_runs(Catalog(store)):
            extra = f"?endpoint={scorer}" if r["kind"] == "ScorerService" and scorer else ""
            d.get(f"{srv.url}/#/run/{r['id']}{extra}")
            if extra:
                time.sleep(2)
                d.find_element("id", "rank").click()
            snap(f"{r['kind'].lower()}-{r['name']}")
    d.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

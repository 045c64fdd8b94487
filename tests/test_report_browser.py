"""The report page in a real browser: headless Chromium, offline, no console errors, every plot drawn.

Needs the Debian packages ``chromium`` (and ``chromium-driver`` for other tools); CI installs them.
Driven through Chromium's own command line: ``--dump-dom`` with a probe script (console errors,
each plot's box and drawn-shape count) and ``--screenshot`` (pixels of each plot's box).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report_data import study_rows

from taskdistill.report import build

PLOTS = ("in_domain", "gk", "collapse", "dataset_size", "schedule", "pareto")
WIDTH = 1300
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]

# Injected first in <head> of a copy of the page: reports console errors, then every plot's box.
PROBE = """<script>(function(){
var errs=[];var keep=function(k){var f=console[k];console[k]=function(){errs.push(k+': '+Array.from(arguments).join(' '));f.apply(console,arguments);};};
keep('error');keep('warn');
window.addEventListener('error',function(e){errs.push('uncaught: '+(e.message||(e.target&&(e.target.src||e.target.href))));},true);
window.addEventListener('load',function(){
 var plots=Array.from(document.querySelectorAll('[data-plot]')).map(function(el){
  var r=el.getBoundingClientRect(),svg=el.querySelector('svg'),s=svg?svg.getBoundingClientRect():null;
  return {name:el.dataset.plot,tag:el.tagName,x:r.left+scrollX,y:r.top+scrollY,w:r.width,h:r.height,
          svg_w:s?s.width:0,svg_h:s?s.height:0,shapes:svg?svg.querySelectorAll('path,use,text').length:0};});
 var pre=document.createElement('pre');pre.id='probe';
 pre.textContent=JSON.stringify({plots:plots,errors:errs,height:document.documentElement.scrollHeight});
 document.body.appendChild(pre);});
})();</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        message = "headless Chromium not found: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return exe


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def inspect_page(page: Path, work: Path) -> dict:
    """Open ``page`` headless: console errors, each plot's box, and a full-page screenshot."""
    probed = work / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    dom = run_chromium([f"--window-size={WIDTH},1000", "--dump-dom", probed.as_uri()], work / "profile-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, f"the probe did not run: {dom.stderr[-2000:]}"
    probe = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    # Chromium logs console messages as INFO:CONSOLE lines; net errors and uncaught exceptions land there too.
    console = re.findall(r':CONSOLE[^\]]*\] "(.*)", source', dom.stderr)
    probe["errors"] += [m for m in console if re.search(r"Uncaught|Failed to load|net::ERR|error", m, re.IGNORECASE)]
    shot = work / f"{page.stem}.png"
    height = int(probe["height"]) + 20
    run_chromium([f"--screenshot={shot}", f"--window-size={WIDTH},{height}", page.as_uri()], work / "profile-shot")
    assert shot.is_file(), "no screenshot was written"
    probe["screenshot"] = shot
    return probe


def drawn(image: Image.Image, box: dict) -> float:
    """Share of pixels inside ``box`` that differ from its most common colour (the background)."""
    x, y, w, h = (int(round(box[k])) for k in ("x", "y", "w", "h"))
    crop = np.asarray(image.convert("RGB").crop((x, y, x + w, y + h))).reshape(-1, 3)
    if crop.size == 0:
        return 0.0
    colours, counts = np.unique(crop, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float(np.any(np.abs(crop.astype(int) - background) > 24, axis=1).mean())


@pytest.mark.slow
def test_report_renders_every_plot_in_headless_chromium(tmp_path):
    chromium()
    results = build.compute_results(study_rows(), [], {"study": "browser", "teacher": {"ref": "tiny"}}, bootstrap=3)
    page = build.write_outputs(results, tmp_path / "report.html")["html"]
    probe = inspect_page(page, tmp_path)
    assert probe["errors"] == []
    boxes = {p["name"]: p for p in probe["plots"]}
    assert set(PLOTS) <= set(boxes)
    image = Image.open(probe["screenshot"])
    assert image.size[0] == WIDTH and image.size[1] >= probe["height"]
    for name in PLOTS:
        box = boxes[name]
        assert box["tag"] == "FIGURE" and box["svg_w"] > 300 and box["svg_h"] > 150, box
        assert box["shapes"] > 20, box
        assert drawn(image, box) > 0.02, f"plot {name} looks blank in the screenshot"


@pytest.mark.slow
def test_the_browser_check_catches_errors_and_blank_plots(tmp_path):
    """Negative control: a page with a script error, a missing resource and an empty plot fails every check."""
    chromium()
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    '<figure class="plot" data-plot="empty" style="width:400px;height:300px"><svg width="400" '
                    'height="300"></svg></figure><img src="missing.png"><script>undefinedFunction();</script>'
                    "</body></html>")
    probe = inspect_page(page, tmp_path)
    assert any("undefinedFunction" in e for e in probe["errors"])
    assert any("missing.png" in e or "Failed to load" in e for e in probe["errors"])
    (box,) = probe["plots"]
    assert box["shapes"] == 0 and drawn(Image.open(probe["screenshot"]), box) < 0.001

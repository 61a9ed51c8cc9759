"""Helpers of the console's browser test (browser_test.py): Chromium through Debian's chromedriver,
controls found by their labels, axe-core, screenshots, nsupdate and the SMTP sink's folder.

Environment: TRUSTMAIL_BASE (http://127.0.0.1:PORT), BOOTSTRAP (the file holding the first serve's JSON
line), BIND_PORT, MAIL_DIR (aiosmtpd's folder, see .ci/interop/mail_sink.py), AXE_JS (axe.min.js),
OUT_DIR (screenshots, downloads and axe reports; CI artifacts), ZONE (shopco.test) and DOMAIN (a name in
it that nothing else uses).
"""

import base64
import glob
import json
import os
import re
import subprocess
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["TRUSTMAIL_BASE"]
BOOT = json.loads(open(os.environ["BOOTSTRAP"]).readline())
BIND_PORT = os.environ["BIND_PORT"]
MAIL_DIR = os.environ["MAIL_DIR"]
AXE_JS = open(os.environ["AXE_JS"]).read()
OUT = os.environ["OUT_DIR"]
ZONE = os.environ.get("ZONE", "shopco.test")
DOMAIN = os.environ["DOMAIN"]
SENDER = f"noreply@{DOMAIN}"
DOWNLOADS = os.path.join(OUT, "downloads")
DESKTOP = (1280, 900)
PHONE = 375


def log(message):
    print(f"console: {message}", flush=True)


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": DOWNLOADS,
                                              "download.prompt_for_download": False})
    # Debian's chromedriver: nothing is downloaded (Selenium Manager is not asked).
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS})
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": BASE, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    return driver


class Console:
    def __init__(self, driver):
        self.d = driver
        self.csp_reports = []

    def wait(self, what, predicate, timeout=20):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                                 ).until(lambda d: predicate())
        except Exception as e:
            self.screenshot("failure")
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}") from e

    def by_label(self, text, scope=None):
        """The control whose <label> reads TEXT."""
        label = (scope or self.d).find_element(By.XPATH, f".//label[normalize-space()={xpath_string(text)}]")
        return self.d.find_element(By.ID, label.get_attribute("for"))

    def button(self, text, scope=None):
        return (scope or self.d).find_element(
            By.XPATH, f".//button[normalize-space()={xpath_string(text)} or @aria-label={xpath_string(text)}]")

    def buttons(self, text):
        return self.d.find_elements(By.XPATH, f"//main//button[normalize-space()={xpath_string(text)}]")

    def heading(self):
        return self.d.find_element(By.CSS_SELECTOR, "main h1").text

    def main_text(self):
        return self.d.find_element(By.ID, "main").text

    def record_rows(self):
        """{(record, name): (status, diagnosis)} of the DNS records table."""
        rows = {}
        for tr in self.d.find_elements(By.XPATH, "//table[caption[starts-with(., 'DNS records')]]/tbody/tr"):
            cells = tr.find_elements(By.TAG_NAME, "td")
            name = cells[2].find_element(By.TAG_NAME, "code").text
            rows[(cells[0].text, name)] = (cells[4].text.strip().lstrip("\u2713\u2026\u00a0 "), cells[5].text)
        return rows

    def announced(self, fragment, timeout=10):
        self.wait(f"announcement containing {fragment!r}",
                  lambda: fragment in self.d.find_element(By.ID, "announcer").get_attribute("textContent"), timeout)

    def axe(self, page):
        """Runs axe-core on the page as it is; fails on serious or critical violations."""
        self.d.execute_script(AXE_JS)
        result = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done({error: String(e)}));")
        if isinstance(result, dict) and "error" in result:
            raise AssertionError(f"axe-core failed on {page}: {result['error']}")
        with open(os.path.join(OUT, f"axe-{page}.json"), "w") as f:
            json.dump(result, f, indent=2)
        bad = [v for v in result if v.get("impact") in ("serious", "critical")]
        for v in result:
            log(f"axe {page}: {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} node(s))")
        if bad:
            details = "; ".join(f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in bad)
            raise AssertionError(f"axe-core: serious or critical violations on {page}: {details}")
        log(f"axe {page}: no serious or critical violations ({len(result)} lesser)")

    def check_logs(self):
        for entry in self.d.get_log("browser"):
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]:
                self.csp_reports.append(entry["message"])
        if self.csp_reports:
            raise AssertionError(f"the browser reported CSP violations: {self.csp_reports}")

    def viewport(self, width, height=DESKTOP[1], mobile=False):
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, name, whole=True):
        """The page as PNG in OUT: whole (beyond the viewport), or what the viewport shows."""
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": whole})
        path = os.path.join(OUT, f"{name}.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        log(f"screenshot {path}")

    def no_horizontal_scroll(self, width):
        scroll = self.d.execute_script("return document.documentElement.scrollWidth")
        if scroll > width:
            wide = self.d.execute_script(
                "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > arguments[0])"
                ".slice(-5).map(e => `${e.tagName}.${e.className}: ${e.textContent.slice(0, 80)}`)", width)
            raise AssertionError(f"the page is {scroll} px wide at a {width} px viewport; past the edge: {wide}")

    def focus_is_visible(self):
        style = self.d.execute_script(
            "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth];")
        assert style[0] != "none" and style[1] != "0px", f"no visible focus outline: {style}"

    def tab_to(self, element, limit=40):
        """Presses Tab until ELEMENT has the focus (keyboard only)."""
        for _ in range(limit):
            if self.d.switch_to.active_element == element:
                self.focus_is_visible()
                return
            webdriver.ActionChains(self.d).send_keys(Keys.TAB).perform()
        raise AssertionError(f"Tab never reached {element.get_attribute('outerHTML')[:120]}")


def xpath_string(text):
    if "'" not in text:
        return f"'{text}'"
    return "concat('" + "', \"'\", '".join(text.split("'")) + "')"


def nsupdate(lines):
    script = f"server 127.0.0.1 {BIND_PORT}\nzone {ZONE}\n" + "".join(f"update add {l}\n" for l in lines) + "send\n"
    subprocess.run(["nsupdate"], input=script, text=True, check=True)
    log("published with nsupdate:\n  " + "\n  ".join(lines))


def code_for(address, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for meta in sorted(glob.glob(os.path.join(MAIL_DIR, "*.json"))):
            with open(meta) as f:
                if address in json.load(f)["rcpt_tos"]:
                    text = open(meta[:-5] + ".txt").read()
                    match = re.search(r"Verification code: ([a-z0-9]{8})", text)
                    assert match, f"{meta}: no code line in {text!r}"
                    return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no mail for {address} reached aiosmtpd within {timeout} s")


def api(method, path, token, body=None):
    request = urllib.request.Request(BASE + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def token_for(environment_id, client_id, secret):
    data = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode()
    with urllib.request.urlopen(f"{BASE}/{environment_id}/as/token", data=data) as response:
        return json.load(response)["access_token"]

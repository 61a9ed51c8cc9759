"""The web console in headless Chromium, against the interop run's trustmail, BIND 9 and aiosmtpd.

    python browser_test.py   (run by .ci/console/browser.sh, a step of .ci/interop/run.sh)

As a person would: sign in with the keyboard, create an environment, add a domain and see its records,
download the BIND zone file and publish it (all but the environment TXT) with nsupdate, watch statuses turn
ACTIVE without a reload, "Check now" until it answers 429 and counts down, add a trusted sender, resend
its code (429 within the minute, shown by the button) and activate it with the code from aiosmtpd's
folder (a wrong code first: its error shows by the field),
publish the environment TXT and watch the domain turn ACTIVE, run the self-check, set and clear MAIL FROM,
page through activities, add and delete a second domain, sign in as READ_ONLY (no write controls), sign
out. axe-core runs on every page (serious or critical violations fail); screenshots at 375 px and at
desktop width go to OUT_DIR. Settings: see console_driver.py.
"""

import glob
import os
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from console_driver import (BASE, BOOT, DESKTOP, DOMAIN, DOWNLOADS, OUT, PHONE, SENDER, Console, api, code_for,
                            log, nsupdate, start_browser, token_for)


def sign_in(c, environment_id, client_id, secret):
    """Keyboard only: Tab to each labelled field, type, Enter."""
    c.d.get(f"{BASE}/console/")
    c.wait("the sign-in form", lambda: c.heading() == "Sign in")
    for label, value in (("Environment ID", environment_id), ("Client ID", client_id), ("Client secret", secret)):
        field = c.by_label(label)
        c.tab_to(field)
        field.send_keys(value)
    c.d.switch_to.active_element.send_keys(Keys.ENTER)


def run(c):
    sign_in(c, BOOT["environmentId"], "not-a-client", "wrong")
    c.wait("the token endpoint's error by the form", lambda: "invalid_client" in c.main_text()
           or "client" in c.d.find_element(By.CSS_SELECTOR, "form .error").text.lower())
    log(f"wrong credentials: {c.d.find_element(By.CSS_SELECTOR, 'form .error').text!r}")
    c.axe("sign-in")

    sign_in(c, BOOT["environmentId"], BOOT["clientId"], BOOT["clientSecret"])
    c.wait("the environments page", lambda: c.heading() == "Environments")
    assert BOOT["clientSecret"] not in c.d.current_url and "token" not in c.d.current_url
    assert c.d.execute_script("return document.cookie") == "", "the console set a cookie"
    token = c.d.execute_script("return JSON.parse(sessionStorage.getItem('trustmail.session')).token")
    assert token.count(".") == 2, "no access token in sessionStorage"
    c.axe("environments")

    # A new environment, then a domain in it, by keyboard.
    c.by_label("Name").send_keys("Console")
    c.button("Create environment").click()
    c.wait("the new environment's page", lambda: c.heading() == "Console")
    environment_url = c.d.current_url
    environment_id = environment_url.rsplit("/", 1)[1]
    domain_field = c.by_label("Domain name")
    c.tab_to(domain_field)
    domain_field.send_keys(DOMAIN, Keys.ENTER)
    c.wait("the domain's page", lambda: c.heading() == DOMAIN)
    c.wait("six records", lambda: len(c.record_rows()) == 6)
    rows = c.record_rows()
    log(f"records: {sorted(rows)}")
    assert {r for r, _ in rows} == {"OWNERSHIP (us-east-1)", "ENVIRONMENT", "DKIM (us-east-1)", "SPF"}, rows
    assert all(status == "VERIFICATION_REQUIRED" for status, _ in rows.values()), rows
    c.d.execute_script("window.notReloaded = true")
    c.axe("domain-new")

    # A copy button puts the value on the clipboard.
    spf_value = c.d.find_element(By.XPATH, "//tr[td[1]='SPF']/td[4]//code").text
    c.button("Copy value of the SPF record").click()
    c.announced("Copied value of the SPF record")
    copied = c.d.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('ERROR ' + e));")
    assert copied == spf_value, f"clipboard holds {copied!r}, not {spf_value!r}"

    # The BIND zone file, downloaded with the token (fetch + Blob), published but for the environment TXT.
    c.button("BIND zone file").click()
    path = os.path.join(DOWNLOADS, f"{DOMAIN}.zone")
    c.wait(f"the download {path}", lambda: os.path.exists(path) and os.path.getsize(path) > 0)
    lines = [l for l in open(path).read().splitlines() if l and not l.startswith(";")]
    assert len(lines) == 6, lines
    environment_txt = [l for l in lines if l.startswith("_trustmail-environment.")]
    nsupdate([l for l in lines if l not in environment_txt])

    def statuses():
        return {record: status for (record, _), (status, _) in c.record_rows().items()}
    c.wait("ownership, DKIM and SPF ACTIVE without a reload", lambda: all(
        s == "ACTIVE" for r, s in statuses().items() if r != "ENVIRONMENT"), timeout=60)
    assert c.d.execute_script("return window.notReloaded === true"), "the page was reloaded"
    environment_row = [v for (r, _), v in c.record_rows().items() if r == "ENVIRONMENT"][0]
    assert environment_row[0] == "VERIFICATION_REQUIRED", environment_row
    assert environment_row[1].strip() and "(" in environment_row[1], f"no diagnosis: {environment_row}"
    log(f"environment record: {environment_row}")
    c.announced("records ACTIVE")
    c.d.execute_script("window.scrollTo(0, 0)")
    c.no_horizontal_scroll(DESKTOP[0])
    c.screenshot("domain-progress-desktop", whole=False)  # README.md shows it (docs/console.png)

    check_now(c)
    activate_sender(c)

    nsupdate(environment_txt)
    c.wait("the domain ACTIVE without a reload", lambda: "Overall: ACTIVE" in c.main_text()
           and "6 of 6 records ACTIVE" in c.main_text(), timeout=60)
    assert c.d.execute_script("return window.notReloaded === true"), "the page was reloaded"

    c.button("Run self-check").click()
    c.wait("the self-check's result", lambda: c.d.find_elements(By.XPATH, "//caption[starts-with(., 'Region us-east-1')]"))
    dkim = c.d.find_element(By.XPATH, "//table[caption[starts-with(., 'Region us-east-1')]]//tr[td[1]='DKIM']/td[2]").text
    log(f"self-check DKIM: {dkim}")
    assert dkim.endswith("pass"), f"self-check DKIM: {dkim}"
    c.axe("domain-active")
    screenshots(c, "domain")

    mail_from(c)
    activities(c, environment_id)
    delete_domain(c, environment_url)
    read_only(c, environment_id)
    c.check_logs()


def check_now(c):
    """Check now, then again at once: 429, its Retry-After counted down, the button disabled meanwhile."""
    check = c.button("Check now")
    check.click()
    c.announced("Checked now.")
    c.wait("Check now free again", lambda: check.get_attribute("aria-busy") is None)
    check.click()
    c.wait("the countdown", lambda: "check again in" in c.d.find_element(By.CLASS_NAME, "countdown").text)
    assert check.get_attribute("aria-disabled") == "true", "Check now is not disabled during the countdown"
    error = check.find_element(By.XPATH, "ancestor::section//div[@role='alert' and contains(., 'Too many requests')]")
    log(f"429: {error.text!r}; {c.d.find_element(By.CLASS_NAME, 'countdown').text!r}")
    c.wait("Check now enabled after the countdown", lambda: check.get_attribute("aria-disabled") is None, timeout=10)
    assert c.d.find_element(By.CLASS_NAME, "countdown").text == ""


def activate_sender(c):
    c.by_label("Sender address").send_keys(SENDER)
    c.button("Add sender").click()
    c.announced("a verification code was mailed")
    # A resend within the minute is refused (429): its P1Error shows next to the button.
    resend = c.button(f"Resend the code to {SENDER}")
    resend.click()
    refused = resend.find_element(By.XPATH, "following-sibling::div[@role='alert']")
    c.wait("the resend's 429 next to it", lambda: "retry after" in refused.text.lower())
    log(f"resend: {refused.text!r}")
    code_field = c.by_label(f"Verification code for {SENDER}")
    code_field.send_keys("aaaaaaaa", Keys.ENTER)
    form = code_field.find_element(By.XPATH, "ancestor::form")
    c.wait("the wrong code's error next to its field",
           lambda: form.find_element(By.CSS_SELECTOR, "[role=alert]").text.strip() != "")
    log(f"wrong code: {form.find_element(By.CSS_SELECTOR, '[role=alert]').text!r}")
    assert code_field.get_attribute("aria-invalid") == "true"
    code = code_for(SENDER)
    log(f"code from aiosmtpd: {code}")
    code_field.clear()
    code_field.send_keys(code)
    c.button("Activate", form).click()
    c.announced(f"{SENDER} is ACTIVE")
    status = c.d.find_element(By.XPATH, f"//tr[td[1]='{SENDER}']/td[2]").text
    assert status.endswith("ACTIVE"), status


def mail_from(c):
    name = f"bounce.{DOMAIN}"
    c.by_label("MAIL FROM domain").send_keys(name)
    c.button("Set MAIL FROM").click()
    c.announced(f"MAIL FROM domain set to {name}")
    assert any(r.startswith("MAIL_FROM") for r, _ in c.record_rows()), "no MX record in the table"
    c.button("Clear MAIL FROM").click()
    c.wait("the MX record gone", lambda: not any(r.startswith("MAIL_FROM") for r, _ in c.record_rows()))


def activities(c, environment_id):
    c.d.find_element(By.LINK_TEXT, "Console").click()
    c.wait("the environment page", lambda: c.heading() == "Console")
    c.d.find_element(By.LINK_TEXT, "Activities in this environment").click()
    c.wait("the activities", lambda: c.d.find_elements(By.XPATH, "//caption[.='Activities, newest first']"))
    times = [t.get_attribute("datetime") for t in c.d.find_elements(By.CSS_SELECTOR, "tbody td:first-child time")]
    assert times and times == sorted(times, reverse=True), f"not newest first: {times}"
    actions = [td.text for td in c.d.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2)")]
    assert "EMAIL_DOMAIN_CREATED" in actions, actions
    assert c.button("Newer").get_attribute("disabled") is not None, "Newer is enabled on the first page"
    c.axe("activities")


def delete_domain(c, environment_url):
    other = f"other.{DOMAIN}"
    c.d.get(environment_url)
    c.wait("the environment page", lambda: c.heading() == "Console")
    c.by_label("Domain name").send_keys(other, Keys.ENTER)
    c.wait("the second domain's page", lambda: c.heading() == other)
    c.d.back()
    c.wait("both domains listed", lambda: other in c.main_text() and "ACTIVE" in c.main_text())
    c.axe("environment")
    screenshots(c, "environment")
    c.button(f"Delete {other}").click()
    c.d.switch_to.alert.accept()
    c.announced(f"Domain {other} deleted.")
    assert other not in c.main_text()


def read_only(c, environment_id):
    admin = token_for(BOOT["environmentId"], BOOT["clientId"], BOOT["clientSecret"])
    client = api("POST", f"/v1/environments/{environment_id}/clients", admin, {"name": "Viewer", "role": "READ_ONLY"})
    c.button("Sign out").click()
    c.wait("signed out", lambda: c.heading() == "Sign in")
    assert c.d.execute_script("return sessionStorage.length") == 0, "sign-out left the token"
    sign_in(c, environment_id, client["id"], client["clientSecret"])
    c.wait("the READ_ONLY client's environment", lambda: c.heading() == "Console")
    assert not c.d.find_elements(By.TAG_NAME, "form"), "READ_ONLY sees a form"
    assert not c.buttons("Delete"), "READ_ONLY sees Delete"
    c.d.find_element(By.LINK_TEXT, DOMAIN).click()
    c.wait("the domain page", lambda: c.heading() == DOMAIN and len(c.record_rows()) == 6)
    for text in ("Add sender", "Set MAIL FROM", "Delete", "Activate", "Resend code"):
        assert not c.buttons(text), f"READ_ONLY sees {text}"
    assert c.buttons("Check now") and c.buttons("Run self-check"), "reads are missing for READ_ONLY"
    c.axe("domain-read-only")


def screenshots(c, name):
    c.viewport(*DESKTOP)
    c.no_horizontal_scroll(DESKTOP[0])
    c.screenshot(f"{name}-desktop")
    c.d.execute_script("window.scrollTo(0, 0)")
    c.screenshot(f"{name}-desktop-top", whole=False)
    c.viewport(PHONE, 812, mobile=True)
    time.sleep(0.3)
    c.no_horizontal_scroll(PHONE)
    c.axe(f"{name}-375")
    c.screenshot(f"{name}-375")
    c.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


if __name__ == "__main__":
    os.makedirs(DOWNLOADS, exist_ok=True)
    for old in glob.glob(os.path.join(DOWNLOADS, "*")):
        os.remove(old)
    driver = start_browser()
    console = Console(driver)
    try:
        run(console)
    except Exception:
        console.screenshot("failure")
        raise
    finally:
        driver.quit()
    log(f"passed; screenshots and axe reports in {OUT}")

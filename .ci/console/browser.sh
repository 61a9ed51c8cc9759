# The console's browser test (.ci/console/browser_test.py) as a step of the interop run: sourced by
# .ci/interop/run.sh, whose trustmail, BIND and aiosmtpd it drives through headless Chromium.
# It installs what it needs: Debian's chromium and chromium-driver, Selenium into the venv, axe-core from
# the npm registry (packed into .ci/build/axe-core; the test injects it, the browser downloads nothing).
# Screenshots (375 px and desktop), downloads and axe reports go to .ci/build/console/ (CI artifacts).
# shellcheck shell=bash

CONSOLE_SELENIUM=selenium==4.51.0
CONSOLE_AXE=axe-core@4.14.1

# console_tools: chromium, chromedriver, Selenium and axe-core; sets CONSOLE_AXE_JS.
console_tools() {
	[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || apt_install chromium chromium-driver
	"$VENV/bin/python" -c "import selenium" 2>/dev/null &&
		[ "$("$VENV/bin/python" -c 'import selenium; print(selenium.__version__)')" = "${CONSOLE_SELENIUM#*==}" ] ||
		"$VENV/bin/pip" install --quiet --disable-pip-version-check "$CONSOLE_SELENIUM"
	local axe_dir=$BUILD/axe-core
	CONSOLE_AXE_JS=$axe_dir/${CONSOLE_AXE#*@}/package/axe.min.js
	if [ ! -s "$CONSOLE_AXE_JS" ]; then
		need_commands npm
		mkdir -p "$axe_dir/${CONSOLE_AXE#*@}"
		(cd "$axe_dir/${CONSOLE_AXE#*@}" && npm pack --silent "$CONSOLE_AXE" >/dev/null && tar xzf axe-core-*.tgz)
	fi
	[ -s "$CONSOLE_AXE_JS" ] || die "no axe.min.js at $CONSOLE_AXE_JS"
	echo "$(/usr/bin/chromium --version); $(/usr/bin/chromedriver --version | cut -d' ' -f1-2); $CONSOLE_SELENIUM; $CONSOLE_AXE"
}

# console_browser_test BOOTSTRAP DOMAIN: the browser test against the trustmail at BASE (whose first serve
# printed its credentials into the file BOOTSTRAP), with DOMAIN (in shopco.test.) new to it.
console_browser_test() {
	console_tools
	mkdir -p "$BUILD/console"
	TRUSTMAIL_BASE=$BASE BOOTSTRAP=$1 DOMAIN=$2 ZONE=shopco.test BIND_PORT=$BIND_PORT MAIL_DIR=$WORK/mail \
		AXE_JS=$CONSOLE_AXE_JS OUT_DIR=$BUILD/console PYTHONDONTWRITEBYTECODE=1 \
		"$VENV/bin/python" "$ROOT/.ci/console/browser_test.py"
}

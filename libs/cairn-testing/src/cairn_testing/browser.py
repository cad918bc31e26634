"""A real browser for UI tests: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver.

`make browser` installs both (`make test` does it first). Selenium is handed the two binaries by path, so
Selenium Manager never runs and nothing is downloaded. A missing browser is an error, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium.webdriver import Chrome, ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

__all__ = ["CHROMEDRIVER", "CHROMIUM", "BrowserUnavailableError", "chrome", "fill", "screenshot", "wait_for"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# root in a container: no user namespaces for Chromium's sandbox; /dev/shm is often tiny there
_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")


class BrowserUnavailableError(RuntimeError):
    """Chromium or chromedriver is not installed where Debian's packages (`make browser`) put them."""


@contextmanager
def chrome(*, window: tuple[int, int] = (1280, 900)) -> Iterator[WebDriver]:
    """A headless Chromium with a `window` (width, height) in CSS pixels, quit on exit.

    Raises `BrowserUnavailableError` (saying to run `make browser`) when the browser or its driver is missing.
    """
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        raise BrowserUnavailableError(
            f"{' and '.join(missing)} not found: run `make browser` "
            "(installs Debian's chromium and chromium-driver packages with apt-get)"
        )
    # Selenium Manager is not called when the driver's path is given; should it ever be, it must not download
    os.environ.setdefault("SE_OFFLINE", "true")
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*_ARGUMENTS, f"--window-size={window[0]},{window[1]}"):
        options.add_argument(argument)
    driver = Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, css: str, timeout: float = 30) -> WebElement:
    """The first element matching the CSS selector `css` once it is visible; `TimeoutException` after `timeout` s."""
    wait = WebDriverWait(driver, timeout)
    element: WebElement = wait.until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)),
        message=f"no visible element matches {css!r} on {driver.current_url} after {timeout} s",
    )
    return element


def fill(driver: WebDriver, css: str, text: str) -> WebElement:
    """Replace the value of the (visible) input matching `css` with `text`, typed as keystrokes."""
    element = wait_for(driver, css)
    element.clear()
    element.send_keys(text)
    return element


def screenshot(driver: WebDriver, path: Path) -> Path:
    """Write what the window shows as a PNG to `path` (its folder is created) and return `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(driver.get_screenshot_as_png())
    return path

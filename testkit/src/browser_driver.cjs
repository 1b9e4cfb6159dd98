const { chromium } = require(process.env.PW_DIR + "/node_modules/playwright-core");
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = {};
  try {
    const width = Number(process.env.WIDTH || 1400);
    const page = await browser.newPage({ viewport: { width, height: 1000 } });
    await page.goto(process.env.URL);
    await page.waitForSelector("#sign-in:not([hidden])", { timeout: 15000 });
    out.dashboard_hidden_before_sign_in = await page.locator("#dashboard").isHidden();
    if (process.env.WRONG_FIRST === "1") {
      await page.fill("#username", process.env.VA_USER);
      await page.fill("#password", "not-the-password-1!");
      await page.click("#sign-in-button");
      await page.waitForFunction(() => document.getElementById("sign-in-error").textContent.startsWith("sign-in failed"), null, { timeout: 15000 });
      out.wrong_password = await page.textContent("#sign-in-error");
      out.dashboard_hidden_after_wrong_password = await page.locator("#dashboard").isHidden();
    }
    await page.fill("#username", process.env.VA_USER);
    await page.fill("#password", process.env.VA_PASSWORD);
    await page.click("#sign-in-button");
    await page.waitForSelector("body[data-loaded=true]", { timeout: 30000 });
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    out.dom = await page.content();
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });

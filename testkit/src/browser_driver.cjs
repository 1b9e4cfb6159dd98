const { chromium } = require(process.env.PW_DIR + "/node_modules/playwright-core");
const fs = require("fs");

// Waits for the page to render data again after an action.
async function rendered(page, action) {
  const before = await page.evaluate(() => Number(document.body.dataset.seq || 0));
  await action();
  await page.waitForFunction(n => Number(document.body.dataset.seq || 0) > n, before, { timeout: 30000 });
}

async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 15000 }), page.click(selector)]);
  return { name: dl.suggestedFilename(), text: fs.readFileSync(await dl.path(), "utf8") };
}

const shown = (page, id) => page.evaluate(i => Number(document.getElementById(i).dataset.value), id);
const rows = page => page.evaluate(() => [...document.querySelectorAll("#flows tbody tr")].map(tr => tr.dataset.flowId));

// The everyday path: export both CSVs, sort the table, pick a flow by its
// name, switch to a preset range; what the page showed after each step.
async function explore(page, out) {
  out.flows_csv = await download(page, "#export-flows");
  out.series_csv = await download(page, "#export-series");
  out.bucket = await page.evaluate(() => document.body.dataset.bucket);
  out.table_ids = await rows(page);
  await page.click('#flows th[data-sort="containment_rate"]');
  out.sorted_by = await page.evaluate(() => document.body.dataset.sort);
  out.sorted_ids = await rows(page);
  out.definition = await page.getAttribute('#flows th[data-sort="containment_rate"]', "title");
  out.tooltips = await page.evaluate(() => document.querySelectorAll("#chart-sessions circle title").length);
  await rendered(page, () => page.selectOption("#flow", { label: process.env.FLOW_NAME }));
  out.picked_flow = await page.evaluate(() => document.body.dataset.flow);
  out.picked_started = await shown(page, "total-started");
  out.picked_scope = await page.textContent("#status");
  await rendered(page, () => page.click("#range-7d"));
  out.range = await page.evaluate(() => document.body.dataset.range);
  out.range_bucket = await page.evaluate(() => document.body.dataset.bucket);
  out.range_started = await shown(page, "total-started");
  out.url = page.url();
  if (process.env.SCREENSHOT_AFTER) await page.screenshot({ path: process.env.SCREENSHOT_AFTER, fullPage: true });
}
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
    if (process.env.EXPLORE === "1") await explore(page, out);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });

// The billing page: start a reconciliation run and follow it.
"use strict";

(() => {
  const start = document.getElementById("start-run");
  if (!start) { return; }  // members read only
  const progress = document.getElementById("run-progress");

  async function follow(runId) {
    for (;;) {
      const run = await api("GET", "/api/v1/admin/billing/reconciliation/runs/" + runId);
      if (run.status === "finished" || run.status === "failed") {
        say(progress, "Run " + run.status + ": " + run.mismatched + " mismatched of " + run.total + ".", run.status === "finished");
        setTimeout(() => window.location.reload(), 600);
        return;
      }
      progress.textContent = "Run " + run.status + ": " + run.subscriptionsSeen + " Stripe subscriptions read…";
      await new Promise((done) => setTimeout(done, 500));
    }
  }

  start.addEventListener("click", async () => {
    try {
      const run = await api("POST", "/api/v1/admin/billing/reconciliation/runs",
        {projectId: consoleFrame.projectId, mode: consoleFrame.mode});
      await follow(run.id);
    } catch (error) { say(progress, error.message, false); }
  });
  if (progress.dataset.activeRun) { follow(progress.dataset.activeRun); }
})();

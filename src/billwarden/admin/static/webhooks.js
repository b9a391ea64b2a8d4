// The webhook events page: replay an event, catch up from Stripe.
"use strict";

(() => {
  const result = document.getElementById("webhook-result");
  document.querySelectorAll("button[data-replay]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        const row = await api("POST", "/api/v1/admin/webhook-events/" + button.dataset.replay + "/replay");
        button.closest("tr").querySelector("[data-status]").textContent = row.status;
        say(result, "Replayed " + row.eventId + ": " + row.status + ".", true);
        setTimeout(() => window.location.reload(), 1500);
      } catch (error) { say(result, error.message, false); }
    });
  });
  const catchUp = document.getElementById("catch-up");
  if (!catchUp) { return; }
  catchUp.addEventListener("click", async () => {
    try {
      const caught = await api("POST", "/api/v1/admin/webhook-events/catch-up",
        {projectId: consoleFrame.projectId, mode: consoleFrame.mode});
      say(result, caught.seen + " event(s) in Stripe; " + caught.stored + " the inbox lacked, stored.", true);
    } catch (error) { say(result, error.message, false); }
  });
})();

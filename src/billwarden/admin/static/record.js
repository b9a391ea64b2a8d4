// A record's diagnostics: the repairs (sync from Stripe, recompute, reset to free).
"use strict";

(() => {
  const form = document.getElementById("repair");
  if (!form) { return; }  // members read only
  const explain = {
    sync_from_stripe: "Read this record's subscriptions from Stripe into billwarden, then recompute the entitlement?",
    recompute: "Rebuild the entitlement snapshot from billwarden's mirror?",
    reset_to_free: "Put this subject's entitlement back to free? Stripe is not touched.",
  };
  const target = form.dataset.entitlementId
    ? {entitlementId: form.dataset.entitlementId}
    : {subscriptionId: form.dataset.subscriptionId};
  const result = document.getElementById("repair-result");
  const url = "/api/v1/admin/billing/reconciliation?" +
    new URLSearchParams({projectId: consoleFrame.projectId, mode: consoleFrame.mode});
  form.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      if (!window.confirm(explain[action])) { return; }
      const reason = form.querySelector("input[name=reason]").value || null;
      try {
        const answer = await api("POST", url, Object.assign({action, reason}, target));
        const reasons = answer.record.mismatchReasons;
        say(result, reasons.length ? "Checked again: still " + reasons.join(", ") + "." : "Repaired: in sync.", !reasons.length);
        const badges = document.getElementById("reasons");
        badges.replaceChildren();
        (reasons.length ? reasons : ["in sync"]).forEach((text) => {
          const badge = document.createElement("span");
          badge.className = reasons.length ? "badge" : "badge ok";
          badge.textContent = text;
          badges.appendChild(badge);
        });
      } catch (error) { say(result, error.message, false); }
    });
  });
})();

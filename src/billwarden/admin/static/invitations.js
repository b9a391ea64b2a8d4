// The invitations page: accept an invitation (from the list, or from a link's token in the
// fragment, which never reaches a server); admins invite and revoke.
"use strict";

(() => {
  const accepted = document.getElementById("accept-result");

  async function accept(body) {
    try {
      const project = await api("POST", "/api/v1/invitations/accept", body);
      say(accepted, "You joined " + project.name + " as " + project.role + ".", true);
      setTimeout(() => window.location.assign("/admin/billing?" + new URLSearchParams({project: project.slug})), 800);
    } catch (error) { say(accepted, error.message, false); }
  }

  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (token) {
    document.getElementById("link-invitation").hidden = false;
    document.getElementById("accept-link").addEventListener("click", async () => {
      await accept({token});
      history.replaceState(null, "", window.location.pathname + window.location.search);
    });
  }
  document.querySelectorAll("button[data-accept]").forEach((button) => {
    button.addEventListener("click", () => accept({invitationId: button.dataset.accept}));
  });

  const invite = document.getElementById("invite");
  if (!invite) { return; }  // not an admin of the shown project
  const result = document.getElementById("invite-result");
  const base = "/api/v1/projects/" + consoleFrame.projectId;
  invite.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(invite);
    try {
      const sent = await api("POST", base + "/members", {email: form.get("email"), role: form.get("role")});
      result.replaceChildren();
      result.classList.remove("said-good", "said-bad");
      const note = document.createElement("p");
      note.textContent = "Invitation for " + sent.email + " made. Send them this link (shown this once); they accept it signed in with that email:";
      const link = document.createElement("code");
      link.id = "invitation-link";
      link.textContent = new URL(sent.acceptUrl, window.location.origin).href;
      result.append(note, link);
    } catch (error) { say(result, error.message, false); }
  });
  document.querySelectorAll("button[data-revoke]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm("Revoke this invitation? Its link stops working.")) { return; }
      try {
        await api("DELETE", base + "/invitations/" + button.dataset.revoke);
        window.location.reload();
      } catch (error) { say(result, error.message, false); }
    });
  });
})();

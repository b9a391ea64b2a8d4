// The API keys page: create a key (shown this once) and deactivate keys.
"use strict";

(() => {
  const result = document.getElementById("key-result");
  document.getElementById("new-key").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      const key = await api("POST", "/api-dashboard/keys/generate",
        {projectId: consoleFrame.projectId, name: form.get("name"), mode: form.get("mode")});
      result.replaceChildren();
      result.classList.remove("said-good", "said-bad");
      const note = document.createElement("p");
      note.textContent = "Copy it now: it is shown this once.";
      const code = document.createElement("code");
      code.id = "created-key";
      code.textContent = key.apiKey;
      result.append(note, code);
    } catch (error) { say(result, error.message, false); }
  });
  document.querySelectorAll("button[data-deactivate]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm("Deactivate this key? Calls made with it fail from now on.")) { return; }
      try {
        await api("POST", "/api-dashboard/keys/deactivate", {keyId: button.dataset.deactivate});
        window.location.reload();
      } catch (error) { say(result, error.message, false); }
    });
  });
})();

// The console's sign-in page: sign in through the JSON API, then go where the visitor was headed.
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const login = event.target;
  const form = new FormData(login);
  const response = await fetch(login.getAttribute("action"), {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    credentials: "same-origin",
    body: JSON.stringify({email: form.get("email"), password: form.get("password")}),
  });
  if (response.ok) {
    // the fragment (an invitation's token) never reached the server: carry it on
    window.location.assign(login.dataset.next + window.location.hash);
  } else {
    const body = await response.json().catch(() => ({}));
    document.getElementById("error").textContent = body.message || "Sign-in failed.";
  }
});

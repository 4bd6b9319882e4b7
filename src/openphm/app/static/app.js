// Starts the NHS design system's components (header, skip link, error summary, ...). nhsuk-frontend 10 is an ES
// module: loaded as a classic script it fails on its `export` and nothing starts. A module file of our own is
// allowed by the policy (script-src 'self') where an inline script would not be. initAll() acts only when the
// body says the browser is supported; a browser that runs modules is.
import { initAll } from "./vendor/nhsuk-frontend/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();

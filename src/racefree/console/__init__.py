"""The operator console (docs/console.md): server-rendered pages at ``/console``.

The console is another door into the same domain functions as the API -- the
same CAS, the same audit rows (actor ``operator:<label>``, details
``via: console``) -- rendered as HTML that works with JavaScript off. Its
modules:

* :mod:`.paths` -- every route's path, and the kill-switch guard's allow-list;
* :mod:`.sessions` -- console sign-ins (cookie token, only its hash stored) and CSRF tokens;
* :mod:`.web` -- templates, security headers (a strict CSP) and the signed-in operator;
* :mod:`.words` -- typed conflicts in plain words, with who won;
* :mod:`.ruleform` -- the auto-stop rule edit form (fields per rule type, read back);
* :mod:`.signin`, :mod:`.pages`, :mod:`.actions`, :mod:`.killswitch` -- the routes.
"""

from racefree.console.paths import allowed_while_locked
from racefree.console.routes import install, router
from racefree.console.web import locked_response

__all__ = ["allowed_while_locked", "install", "locked_response", "router"]

"""How `pgstress --help` shows defaults: as a user would type them, and only where there is one to type."""

from __future__ import annotations

import argparse


class DefaultsAsTyped(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and the epilog's lines as written; appends "(default: X)" to an option's help
    when X is a value one could type.

    An option whose default is no value (None: the option's absence means something, which its help
    says), a flag (False) or an option whose help already states its default gets nothing appended, where
    argparse's ArgumentDefaultsHelpFormatter would print "(default: None)" or "(default: False)".
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "(default" in text or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool)):
            return text
        return text + " (default: %(default)s)"

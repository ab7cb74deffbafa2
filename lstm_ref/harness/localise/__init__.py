"""Localisation: where a port that no catalogue fault explains goes wrong
(:mod:`.search`), by corrections fitted to the reference
(:mod:`.families`), one step at a time (:mod:`.forcing`), inside the step
where needed (:mod:`.gates`)."""

from .search import AMBIGUOUS, FOUND, LOCALISED, UNSURE, Fit, Localisation, localise

__all__ = ["AMBIGUOUS", "FOUND", "LOCALISED", "UNSURE", "Fit", "Localisation", "localise"]

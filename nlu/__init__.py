"""Understanding: what a customer's message means. `Interpretation` is a leaf type anyone may import."""

from nlu.interpretation import INTENTS, Entity, Interpretation, Interpreter

__all__ = ["INTENTS", "Entity", "Interpretation", "Interpreter"]

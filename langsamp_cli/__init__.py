"""langsamp: Language-Script Aware Multilingual Pretraining, evaluation and analysis."""

__version__ = "0.1.0"

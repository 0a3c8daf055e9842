"""The data layer: logged tables and their schema (``logs``), sessions of steps (``steps``),
feature matrices (``features``), click models (``click_models``) and Plackett-Luce slates
(``plackett_luce``). numpy and pandas only; imports nothing of RecGym but the core."""

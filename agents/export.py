"""``python -m agents.export RUN_DIR --onnx FILE``: a trained agent as ONNX (:mod:`agents.serve.export`)."""

from agents.serve.export import main

if __name__ == "__main__":
    main()

"""Export: a trained run -> encoder.onnx + decoder.onnx in a verified, self-describing bundle."""

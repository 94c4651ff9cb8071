"""Simulated bay sensors and city layouts that publish over MQTT and record their ground truth."""

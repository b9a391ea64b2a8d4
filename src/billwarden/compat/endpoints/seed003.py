"""Seed 003's routes (docs/migrating/). Not built yet."""

from __future__ import annotations

from fastapi import APIRouter

routers: list[APIRouter] = []

"""Gathers every router."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import auth, predict

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(predict.router)

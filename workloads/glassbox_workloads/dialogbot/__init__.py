"""DialogBot (CovidDialog): consultations, finetuning, test metrics and the chat endpoint."""

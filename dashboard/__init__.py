"""The MODPO Explorer dashboard (Streamlit): thin pages over the modpo library."""
